import { describe, expect, it } from 'vitest';
import { formatTime, parseWhen } from '../../src/domain/when.js';

const NOW = Date.UTC(2026, 10, 27, 14, 30, 0);
const HOUR = 3_600_000;

describe('parseWhen', () => {
  it('"now" is now', () => {
    expect(parseWhen('now', NOW)).toBe(NOW);
    expect(parseWhen('  now ', NOW)).toBe(NOW);
  });

  it('relative times: +2h, +10m, in 90s, +1d, +1.5h', () => {
    expect(parseWhen('+2h', NOW)).toBe(NOW + 2 * HOUR);
    expect(parseWhen('+10m', NOW)).toBe(NOW + 10 * 60_000);
    expect(parseWhen('in 90s', NOW)).toBe(NOW + 90_000);
    expect(parseWhen('IN 2h', NOW)).toBe(NOW + 2 * HOUR);
    expect(parseWhen('+1d', NOW)).toBe(NOW + 24 * HOUR);
    expect(parseWhen('+1.5h', NOW)).toBe(NOW + 1.5 * HOUR);
  });

  it('ISO 8601 with a zone is that instant', () => {
    expect(parseWhen('2026-12-01T09:00Z', NOW)).toBe(Date.UTC(2026, 11, 1, 9, 0));
    expect(parseWhen('2026-12-01 09:00Z', NOW)).toBe(Date.UTC(2026, 11, 1, 9, 0));
    expect(parseWhen('2026-12-01T09:00:30.250Z', NOW)).toBe(Date.UTC(2026, 11, 1, 9, 0, 30, 250));
    expect(parseWhen('2026-12-01T09:00+02:00', NOW)).toBe(Date.UTC(2026, 11, 1, 7, 0));
    expect(parseWhen('2026-12-01T09:00-0500', NOW)).toBe(Date.UTC(2026, 11, 1, 14, 0));
  });

  it('a date-time without a zone is local time, as `date` shows it', () => {
    expect(parseWhen('2026-12-01 09:00', NOW)).toBe(new Date(2026, 11, 1, 9, 0).getTime());
    expect(parseWhen('2026-12-01T09:00:15', NOW)).toBe(new Date(2026, 11, 1, 9, 0, 15).getTime());
    expect(parseWhen('2026-12-01', NOW)).toBe(new Date(2026, 11, 1, 0, 0).getTime());
    expect(parseWhen('2028-02-29 12:00', NOW)).toBe(new Date(2028, 1, 29, 12, 0).getTime());
  });

  it('garbage is null, never a guess', () => {
    for (const value of [
      '',
      'tomorrow',
      'next tuesday-ish',
      'Now!',
      '+',
      '+2x',
      '+-1h',
      'in',
      '2h',
      '12/01/2026',
      '2026-12-1',
      '2026-12-01 9:00',
      '2026-12-01T25:00',
      '2026-12-01T09:61',
      '2026-13-01',
      '2026-00-10',
      '2026-12-00',
      '2026-02-30',
      '2027-02-29 10:00',
      '2026-04-31T09:00Z',
      // A zone name must be one Intl knows ("09:00 UTC" and "09:00 Europe/Paris" are times now).
      '2026-12-01 09:00 Nowhere/Atall',
      '2026-12-01 09:00 CEST',
      '1764579600000',
    ]) {
      expect(parseWhen(value, NOW), JSON.stringify(value)).toBeNull();
    }
  });
});

describe('formatTime', () => {
  it('is ISO in UTC, or empty for no time', () => {
    expect(formatTime(Date.UTC(2026, 11, 1, 9, 0))).toBe('2026-12-01T09:00:00.000Z');
    expect(formatTime(null)).toBe('');
  });
});
