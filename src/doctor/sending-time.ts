/**
 * How long one newsletter to the largest list takes at the configured pace: NEWSLETTER_RATE
 * (messages per second) and, when set, NEWSLETTER_HOURLY_LIMIT (messages per clock hour for the
 * sending account). An operator choosing a send time, or wondering why the last readers got the
 * newsletter in the evening, needs this number; working it out by hand means knowing that the
 * quota, not the rate, is what usually decides.
 */
import type { ListSummary } from '../store/store.js';
import { type CheckResult, ok, warning } from './types.js';

const HOUR_MS = 3_600_000;
/** NEWSLETTER_RATE when unset (src/config.ts): named, since many never set it and wonder. */
const DEFAULT_RATE = 10;
/** Beyond this a send reaches its last readers on another day: worth a warning. */
const LONG_SEND_MS = 24 * HOUR_MS;

/**
 * Milliseconds to send `recipients` messages at `rate` per second, at most `hourlyLimit` per
 * clock hour: the full hours the quota holds it back, then the rest at the rate. It assumes the
 * send starts as an hour begins and has the quota to itself (retries and other newsletters of
 * the same account share it), so it is a lower bound.
 */
export function sendingTimeMs(recipients: number, rate: number, hourlyLimit: number | null): number {
  if (recipients <= 0) return 0;
  const atRate = (count: number) => (count / rate) * 1000;
  if (hourlyLimit === null || atRate(hourlyLimit) >= HOUR_MS) return atRate(recipients);
  const fullHours = Math.ceil(recipients / hourlyLimit) - 1;
  return fullHours * HOUR_MS + atRate(recipients - fullHours * hourlyLimit);
}

/**
 * `45 s`, `3 min 20 s`, `17 min`, `2 h 5 min`, `3 days 4 h`: two units at most, as a person says
 * it. Under an hour the seconds stay: 2,000 recipients at the default 10 a second are 3 min 20 s,
 * and "3 min" would hide a sixth of it.
 */
export function aboutDuration(ms: number): string {
  const seconds = Math.max(1, Math.round(ms / 1000));
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) {
    const rest = seconds % 60;
    return rest === 0 ? `${seconds / 60} min` : `${Math.floor(seconds / 60)} min ${rest} s`;
  }
  const minutes = Math.round(seconds / 60);
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return minutes % 60 === 0 ? `${hours} h` : `${hours} h ${minutes % 60} min`;
  const days = Math.floor(hours / 24);
  const unit = days === 1 ? 'day' : 'days';
  return hours % 24 === 0 ? `${days} ${unit}` : `${days} ${unit} ${hours % 24} h`;
}

export function sendingTimeCheck(
  lists: readonly ListSummary[],
  pace: { rate: number; hourlyLimit: number | null },
): CheckResult {
  const largest = [...lists].sort((a, b) => b.reachable - a.reachable)[0];
  if (largest === undefined || largest.reachable === 0) {
    return ok('sending-time', 'No list has anyone to send to yet, so there is no sending time to estimate.');
  }
  const ms = sendingTimeMs(largest.reachable, pace.rate, pace.hourlyLimit);
  const paceText =
    `NEWSLETTER_RATE=${pace.rate} (messages per second${pace.rate === DEFAULT_RATE ? ', the default' : ''})` +
    (pace.hourlyLimit === null ? '' : ` and NEWSLETTER_HOURLY_LIMIT=${pace.hourlyLimit} (per clock hour)`);
  const limitedBy =
    pace.hourlyLimit !== null &&
    pace.hourlyLimit < largest.reachable &&
    (pace.hourlyLimit / pace.rate) * 1000 < HOUR_MS
      ? ' The hourly limit, not the rate, sets the pace.'
      : '';
  const message =
    `A newsletter to the largest list, "${largest.name}" (${largest.reachable} reachable), takes about ${aboutDuration(ms)} at ${paceText}.${limitedBy}` +
    (pace.hourlyLimit === null
      ? ''
      : ' Retries and other newsletters share the hourly limit, so it can take longer.');
  if (ms > LONG_SEND_MS) {
    return warning(
      'sending-time',
      `${message} Its last readers get it on another day than its first.`,
      'If your provider allows it, raise NEWSLETTER_HOURLY_LIMIT or NEWSLETTER_RATE; otherwise schedule it (`--at`) so that the spread does not matter.',
    );
  }
  return ok('sending-time', message);
}
