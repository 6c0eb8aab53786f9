/**
 * The limiter is pure: it is given the time and returns how long to wait. These tests play a
 * clock forward by hand, so they are exact and take no time.
 */
import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../../src/domain/rate-limiter.js';

const T0 = 1_000_000;

/** Sends `count` messages as fast as the limiter allows from `start`; returns each send time. */
function sendTimes(limiter: RateLimiter, start: number, count: number): number[] {
  const times: number[] = [];
  let now = start;
  for (let i = 0; i < count; i++) {
    now += limiter.reserve(now);
    times.push(now);
  }
  return times;
}

/** The most sends inside any window [t, t + width). */
function busiestWindow(times: number[], width: number): number {
  let most = 0;
  for (const start of times)
    most = Math.max(most, times.filter((t) => t >= start && t < start + width).length);
  return most;
}

describe('RateLimiter', () => {
  it('spaces messages evenly at the configured rate', () => {
    const times = sendTimes(new RateLimiter(10, T0), T0, 30);
    expect(times[0]).toBe(T0);
    const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
    expect(gaps.every((gap) => gap === 100)).toBe(true);
    expect(busiestWindow(times, 1000)).toBe(10);
  });

  it('many reservations at the same instant get growing waits, one interval apart', () => {
    const limiter = new RateLimiter(4, T0);
    expect([0, 1, 2, 3, 4].map(() => limiter.reserve(T0))).toEqual([0, 250, 500, 750, 1000]);
  });

  it('after a long pause, banks at most one second of sends: no burst beyond that', () => {
    const limiter = new RateLimiter(10, T0);
    sendTimes(limiter, T0, 5);
    const later = T0 + 3_600_000;
    const waits = Array.from({ length: 25 }, () => limiter.reserve(later));
    // One second's worth (10) go at once, then the steady pace resumes.
    expect(waits.filter((w) => w === 0)).toHaveLength(10);
    expect(waits.slice(10, 13)).toEqual([100, 200, 300]);
    const times = waits.map((w) => later + w);
    expect(busiestWindow(times, 1000)).toBeLessThanOrEqual(2 * 10);
    expect(busiestWindow(times, 2000)).toBeLessThanOrEqual(3 * 10);
  });

  it('a pause shorter than a second banks only the slots it skipped', () => {
    const limiter = new RateLimiter(10, T0);
    sendTimes(limiter, T0, 1); // next slot T0 + 100
    const waits = Array.from({ length: 5 }, () => limiter.reserve(T0 + 350));
    // Slots at 100, 200, 300 are past: three go at once, then 400 and 500.
    expect(waits).toEqual([0, 0, 0, 50, 150]);
  });

  it('keeps the pace over a long run whatever the rate', () => {
    for (const rate of [1, 3, 50, 1000]) {
      const times = sendTimes(new RateLimiter(rate, T0), T0, Math.min(rate * 5, 2000));
      const span = (times.at(-1) as number) - T0;
      expect(span, `rate ${rate}`).toBeGreaterThanOrEqual(((times.length - 1) * 1000) / rate - 1);
      expect(busiestWindow(times.slice(0, 200), 1000), `rate ${rate}`).toBeLessThanOrEqual(Math.ceil(rate));
    }
  });

  it('below one message a second, the first still goes at once and the rest are spaced', () => {
    const limiter = new RateLimiter(0.5, T0);
    expect(limiter.reserve(T0)).toBe(0);
    expect(limiter.reserve(T0)).toBe(2000);
    // After a long pause, one message (not half of one, not none) goes at once.
    expect(limiter.reserve(T0 + 600_000)).toBe(0);
    expect(limiter.reserve(T0 + 600_000)).toBe(2000);
  });
});
