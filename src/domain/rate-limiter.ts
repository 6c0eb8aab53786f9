/**
 * Paces sends at `perSecond` messages per second, with a burst of at most one second's worth.
 * `delayFor()` is pure; the engine waits the returned time (pacing, never ordering).
 */
export class RateLimiter {
  private readonly intervalMs: number;
  private nextSlot: number;

  constructor(perSecond: number, now: number) {
    this.intervalMs = 1000 / perSecond;
    this.nextSlot = now;
  }

  /** Reserves the next slot and returns how long to wait for it (0 when it is already due). */
  reserve(now: number): number {
    // Never bank more than a second of unused slots (and at least one): a long pause must not
    // become a burst, and below one message a second the first still goes at once.
    const earliest = now - Math.max(0, 1000 - this.intervalMs);
    if (this.nextSlot < earliest) this.nextSlot = earliest;
    const wait = Math.max(0, this.nextSlot - now);
    this.nextSlot += this.intervalMs;
    return wait;
  }
}
