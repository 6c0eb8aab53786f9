/**
 * `--at WHEN`: an ISO 8601 date-time (`2026-12-01T09:00`, `2026-12-01 09:00Z`,
 * `2026-12-01T09:00+01:00`), optionally followed by an IANA zone (`2026-12-24 09:00 Europe/Paris`),
 * `now`, or a relative `+10m` / `in 2h`. A date-time without a zone is local time, as `date`
 * shows it (TZ). The zone typed, if any, is kept with the newsletter for display (src/domain/zone.ts).
 */
import { parseDuration } from './duration.js';
import type { Millis } from './types.js';
import { ianaZone, instantIn, offsetZone } from './zone.js';

export interface When {
  at: Millis;
  /** The zone typed (an IANA name, or an offset such as `+01:00`; `Z` is `UTC`); null: TZ. */
  zone: string | null;
}

const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})([ T](\d{2}):(\d{2})(:(\d{2})(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$/i;

export function parseWhen(value: string, now: Millis): Millis | null {
  return parseWhenWithZone(value, now)?.at ?? null;
}

export function parseWhenWithZone(value: string, now: Millis): When | null {
  const text = value.trim();
  if (text === 'now') return { at: now, zone: null };
  const relative = /^(?:\+|in\s+)(.+)$/i.exec(text);
  if (relative) {
    const ms = parseDuration(relative[1] as string);
    return ms === null ? null : { at: now + ms, zone: null };
  }
  // "2026-12-24 09:00 Europe/Paris": the date-time, then a zone name after the last space.
  const named = /^(.+?)\s+([A-Za-z][\w+-]*(?:\/[\w+-]+)*)$/.exec(text);
  const dateText = named ? (named[1] as string) : text;
  const date = DATE_TIME.exec(dateText);
  if (!date) return null;
  // Date.parse rolls an impossible day over ("2026-02-30" is 2 March): a typo must not move a send.
  const [year, month, day] = [Number(date[1]), Number(date[2]), Number(date[3])];
  if (month < 1 || month > 12 || day < 1 || day > new Date(Date.UTC(year, month, 0)).getUTCDate())
    return null;
  const offset = date[10];
  if (named) {
    const zone = ianaZone(named[2] as string);
    // A zone name and an offset would say the same thing twice, perhaps differently.
    if (zone === null || offset !== undefined) return null;
    const fraction = date[9] ? Math.round(Number(date[9]) * 1000) : 0;
    const at = instantIn(
      {
        year,
        month,
        day,
        hour: Number(date[5] ?? 0),
        minute: Number(date[6] ?? 0),
        second: Number(date[8] ?? 0),
        ms: fraction,
      },
      zone,
    );
    return at === null ? null : { at, zone };
  }
  const normalised = dateText.replace(' ', 'T');
  const ms = Date.parse(/T/.test(normalised) ? normalised : `${normalised}T00:00`);
  if (Number.isNaN(ms)) return null;
  return { at: ms, zone: offset === undefined ? null : offsetZone(offset) };
}

export function formatTime(ms: Millis | null): string {
  return ms === null ? '' : new Date(ms).toISOString();
}
