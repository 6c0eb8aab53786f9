/**
 * Send times in the zone typed (issue 14): `--at` with an IANA zone or an offset is that instant,
 * the zone is kept for display, an hour skipped by a clock change is refused, and times are shown
 * with their offset.
 */
import { describe, expect, it } from 'vitest';
import { parseWhenWithZone } from '../../src/domain/when.js';
import { formatInZone, ianaZone, offsetZone } from '../../src/domain/zone.js';

const NOW = Date.UTC(2026, 10, 1);

describe('parseWhenWithZone', () => {
  it('a date-time followed by an IANA zone is that wall time there, and keeps the zone', () => {
    expect(parseWhenWithZone('2026-12-24 09:00 Europe/Paris', NOW)).toEqual({
      at: Date.UTC(2026, 11, 24, 8, 0),
      zone: 'Europe/Paris',
    });
    // Summer time: New York is UTC-4 in July.
    expect(parseWhenWithZone('2026-07-01T09:00 America/New_York', NOW)).toEqual({
      at: Date.UTC(2026, 6, 1, 13, 0),
      zone: 'America/New_York',
    });
  });

  it('an offset is kept as the zone; Z is UTC; none is TZ (null)', () => {
    expect(parseWhenWithZone('2026-12-24T09:00+01:00', NOW)).toEqual({
      at: Date.UTC(2026, 11, 24, 8, 0),
      zone: '+01:00',
    });
    expect(parseWhenWithZone('2026-12-24T09:00-0530', NOW)?.zone).toBe('-05:30');
    expect(parseWhenWithZone('2026-12-24 09:00Z', NOW)?.zone).toBe('UTC');
    expect(parseWhenWithZone('2026-12-24 09:00', NOW)?.zone).toBeNull();
    expect(parseWhenWithZone('+2h', NOW)).toEqual({ at: NOW + 7_200_000, zone: null });
  });

  it('refuses an unknown zone, a zone with an offset, and a wall time a clock change skips', () => {
    expect(parseWhenWithZone('2026-12-24 09:00 Mars/Olympus', NOW)).toBeNull();
    expect(parseWhenWithZone('2026-12-24T09:00+01:00 Europe/Paris', NOW)).toBeNull();
    // 28 March 2027, Paris: 02:00 becomes 03:00; 02:30 never happens.
    expect(parseWhenWithZone('2027-03-28 02:30 Europe/Paris', NOW)).toBeNull();
    expect(parseWhenWithZone('2027-03-28 03:30 Europe/Paris', NOW)?.at).toBe(Date.UTC(2027, 2, 28, 1, 30));
  });
});

describe('formatInZone', () => {
  it('shows the wall time, the offset and the zone name', () => {
    const at = Date.UTC(2026, 11, 24, 8, 0);
    expect(formatInZone(at, 'Europe/Paris')).toBe('2026-12-24 09:00 +01:00 (Europe/Paris)');
    expect(formatInZone(at, '+01:00')).toBe('2026-12-24 09:00 +01:00');
    expect(formatInZone(at, '-05:30')).toBe('2026-12-24 02:30 -05:30');
    expect(formatInZone(at + 15_000, 'UTC')).toBe('2026-12-24 08:00:15 +00:00');
    expect(formatInZone(Date.UTC(2026, 6, 1, 13, 0), 'America/New_York')).toBe(
      '2026-07-01 09:00 -04:00 (America/New_York)',
    );
  });

  it('shows a zone this host does not know in TZ instead of failing', () => {
    const at = Date.UTC(2026, 11, 24, 8, 0);
    expect(formatInZone(at, 'Nowhere/Atall')).toBe(formatInZone(at, null));
  });

  it('names zones as Intl does, and only real ones', () => {
    expect(ianaZone('Europe/Paris')).toBe('Europe/Paris');
    expect(ianaZone('Nowhere/Atall')).toBeNull();
    expect(offsetZone('+0100')).toBe('+01:00');
    expect(offsetZone('z')).toBe('UTC');
  });
});
