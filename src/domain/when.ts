/**
 * `--at WHEN`: an ISO 8601 date-time (`2026-12-01T09:00`, `2026-12-01 09:00Z`), `now`, or a
 * relative `+10m` / `in 2h`. A date-time without a zone is local time, as `date` shows it.
 */
import { parseDuration } from './duration.js';
import type { Millis } from './types.js';

export function parseWhen(value: string, now: Millis): Millis | null {
  const text = value.trim();
  if (text === 'now') return now;
  const relative = /^(?:\+|in\s+)(.+)$/i.exec(text);
  if (relative) {
    const ms = parseDuration(relative[1] as string);
    return ms === null ? null : now + ms;
  }
  const date = /^(\d{4})-(\d{2})-(\d{2})([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$/.exec(text);
  if (!date) return null;
  // Date.parse rolls an impossible day over ("2026-02-30" is 2 March): a typo must not move a send.
  const [year, month, day] = [Number(date[1]), Number(date[2]), Number(date[3])];
  if (month < 1 || month > 12 || day < 1 || day > new Date(Date.UTC(year, month, 0)).getUTCDate())
    return null;
  const normalised = text.replace(' ', 'T');
  const ms = Date.parse(/T/.test(normalised) ? normalised : `${normalised}T00:00`);
  return Number.isNaN(ms) ? null : ms;
}

export function formatTime(ms: Millis | null): string {
  return ms === null ? '' : new Date(ms).toISOString();
}
