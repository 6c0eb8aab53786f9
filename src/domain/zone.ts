/**
 * Send times in the zone people think in (issue 14). `--at "2026-12-24 09:00 Europe/Paris"` or
 * `--at "2026-12-24T09:00+01:00"` keeps that zone with the newsletter; every later display of its
 * time (show, list, status, send-due) is in that zone, with the offset, so that "09:00" stays
 * 09:00 for the person who typed it, whatever TZ cron or a colleague has. A time typed without a
 * zone ("2026-12-24 09:00", "+2h", "now") has none stored: it is read and shown in TZ.
 *
 * A zone is an IANA name (Europe/Paris, checked by Intl) or a fixed offset (+01:00; `Z` is UTC).
 * `--json` keeps printing UTC ISO 8601 instants (one format for machines) plus the zone's name.
 */
import type { Millis } from './types.js';

const OFFSET = /^(Z|[+-]\d{2}:?\d{2})$/i;

/** An IANA zone Intl knows, as Intl spells it; null when it is not one. */
export function ianaZone(name: string): string | null {
  if (!/^[A-Za-z][\w+-]*(\/[\w+-]+)*$/.test(name)) return null;
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions().timeZone;
  } catch {
    return null;
  }
}

/** `Z`, `+0100`, `+01:00` → `UTC`, `+01:00`, `+01:00`; null when it is not an offset. */
export function offsetZone(text: string): string | null {
  if (!OFFSET.test(text)) return null;
  if (text.toUpperCase() === 'Z') return 'UTC';
  const digits = text.replace(':', '');
  return `${digits.slice(0, 3)}:${digits.slice(3, 5)}`;
}

/** The zone TZ gives this process (Intl's default), e.g. `Europe/Paris` or `UTC`. */
export function processZone(): string {
  return new Intl.DateTimeFormat().resolvedOptions().timeZone;
}

/** Minutes east of UTC that `zone` (IANA name or offset) is at instant `ms`. */
export function offsetMinutes(ms: Millis, zone: string): number {
  const fixed = /^([+-])(\d{2}):(\d{2})$/.exec(zone);
  if (fixed) return (fixed[1] === '-' ? -1 : 1) * (Number(fixed[2]) * 60 + Number(fixed[3]));
  const wall = wallClock(ms, zone);
  const asUtc = Date.UTC(wall.year, wall.month - 1, wall.day, wall.hour, wall.minute, wall.second);
  return Math.round((asUtc - Math.floor(ms / 1000) * 1000) / 60_000);
}

interface Wall {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

function wallClock(ms: Millis, zone: string): Wall {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone: zone,
    hourCycle: 'h23',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  }).formatToParts(new Date(ms));
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value ?? 0);
  return {
    year: get('year'),
    month: get('month'),
    day: get('day'),
    hour: get('hour'),
    minute: get('minute'),
    second: get('second'),
  };
}

/**
 * The instant a wall-clock time has in `zone`; null when that time does not exist there (the
 * hour skipped when clocks go forward): a send must not silently move by an hour.
 */
export function instantIn(
  wall: {
    year: number;
    month: number;
    day: number;
    hour: number;
    minute: number;
    second: number;
    ms: number;
  },
  zone: string,
): Millis | null {
  const asUtc = Date.UTC(wall.year, wall.month - 1, wall.day, wall.hour, wall.minute, wall.second, wall.ms);
  // Two passes: the offset at the first guess may differ from the offset at the answer (DST).
  let at = asUtc - offsetMinutes(asUtc, zone) * 60_000;
  at = asUtc - offsetMinutes(at, zone) * 60_000;
  const back = wallClock(at, zone);
  const same =
    back.year === wall.year &&
    back.month === wall.month &&
    back.day === wall.day &&
    back.hour === wall.hour &&
    back.minute === wall.minute;
  return same ? at : null;
}

const UTC_NAMES = new Set(['UTC', 'Etc/UTC', 'GMT', 'Etc/GMT', 'Z']);

/** `+01:00`, `-05:30`, `+00:00`. */
function formatOffset(minutes: number): string {
  const sign = minutes < 0 ? '-' : '+';
  const abs = Math.abs(minutes);
  return `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

/**
 * `2026-12-24 09:00 +01:00 (Europe/Paris)`: the time in `zone` (null: TZ), with its offset, and
 * the zone's name when one was typed (not a bare offset, not UTC). Seconds only when there are
 * some. TZ's name is left out: every time on a screen would repeat it, and the offset says it.
 */
export function formatInZone(ms: Millis, zone: string | null): string {
  // A zone this host's ICU does not know (a database moved from a newer host) is shown in TZ
  // rather than failing the command that only wanted to show it.
  const name =
    zone === null || (!/^[+-]\d{2}:\d{2}$/.test(zone) && ianaZone(zone) === null) ? processZone() : zone;
  const offset = offsetMinutes(ms, name);
  const shifted = new Date(Math.floor(ms / 1000) * 1000 + offset * 60_000);
  const iso = shifted.toISOString();
  const seconds = iso.slice(17, 19) === '00' ? '' : iso.slice(16, 19);
  const label =
    zone === null || name !== zone || /^[+-]\d{2}:\d{2}$/.test(name) || UTC_NAMES.has(name)
      ? ''
      : ` (${name})`;
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)}${seconds} ${formatOffset(offset)}${label}`;
}
