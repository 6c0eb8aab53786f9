/** doctor's estimate of how long a newsletter to the largest list takes at the configured pace. */
import { describe, expect, it } from 'vitest';
import { aboutDuration, sendingTimeCheck, sendingTimeMs } from '../../src/doctor/sending-time.js';

describe('sendingTimeMs', () => {
  it('the rate alone: recipients / rate', () => {
    expect(sendingTimeMs(6000, 10, null)).toBe(600_000);
    expect(sendingTimeMs(0, 10, null)).toBe(0);
  });

  it('an hourly limit the rate never reaches changes nothing', () => {
    expect(sendingTimeMs(6000, 1, 10_000)).toBe(6_000_000);
  });

  it('a limit below what the rate sends in an hour: full hours held back, then the rest at the rate', () => {
    // 1200 at 500 an hour: two full hours, then 200 at 10 a second (20 s).
    expect(sendingTimeMs(1200, 10, 500)).toBe(2 * 3_600_000 + 20_000);
    // Exactly the limit: no waiting, 500 at 10 a second.
    expect(sendingTimeMs(500, 10, 500)).toBe(50_000);
  });
});

describe('aboutDuration', () => {
  it.each([
    [400, '1 s'],
    [45_000, '45 s'],
    [17 * 60_000, '17 min'],
    // 2,000 recipients at the default 10 a second (issue 17): the seconds are not rounded away.
    [200_000, '3 min 20 s'],
    [3_599_000, '59 min 59 s'],
    [2 * 3_600_000, '2 h'],
    [2 * 3_600_000 + 5 * 60_000, '2 h 5 min'],
    [76 * 3_600_000, '3 days 4 h'],
    [24 * 3_600_000, '1 day'],
  ])('%d ms → %s', (ms, text) => {
    expect(aboutDuration(ms)).toBe(text);
  });
});

describe('sendingTimeCheck', () => {
  const lists = [
    { name: 'small', members: 10, reachable: 10 },
    { name: 'readers', members: 9000, reachable: 6000 },
  ];

  it('names the largest list by who it reaches, the time and the settings', () => {
    const check = sendingTimeCheck(lists, { rate: 10, hourlyLimit: null });
    expect(check).toMatchObject({ name: 'sending-time', level: 'ok' });
    expect(check.message).toBe(
      'A newsletter to the largest list, "readers" (6000 reachable), takes about 10 min at NEWSLETTER_RATE=10 (messages per second, the default).',
    );
  });

  it('says when the hourly limit sets the pace', () => {
    const check = sendingTimeCheck(lists, { rate: 10, hourlyLimit: 1000 });
    expect(check.level).toBe('ok');
    expect(check.message).toContain('takes about 5 h 2 min');
    expect(check.message).toContain('NEWSLETTER_HOURLY_LIMIT=1000');
    expect(check.message).toContain('The hourly limit, not the rate, sets the pace.');
  });

  it('more than a day is a warning', () => {
    const check = sendingTimeCheck(lists, { rate: 10, hourlyLimit: 100 });
    expect(check.level).toBe('warning');
    expect(check.message).toContain('takes about 2 days 11 h');
    expect(check.fix).toContain('NEWSLETTER_HOURLY_LIMIT');
  });

  it('2,000 recipients at the default rate: 3 min 20 s', () => {
    const check = sendingTimeCheck([{ name: 'club', members: 2000, reachable: 2000 }], {
      rate: 10,
      hourlyLimit: null,
    });
    expect(check.message).toContain(
      'takes about 3 min 20 s at NEWSLETTER_RATE=10 (messages per second, the default)',
    );
  });

  it('no list, or nobody reachable: nothing to estimate', () => {
    expect(sendingTimeCheck([], { rate: 10, hourlyLimit: null }).message).toContain('No list has anyone');
    expect(
      sendingTimeCheck([{ name: 'gone', members: 3, reachable: 0 }], { rate: 10, hourlyLimit: null }).level,
    ).toBe('ok');
  });
});
