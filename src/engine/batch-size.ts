/**
 * How many recipients a run claims at a time (issue 17, session 8).
 *
 * NEWSLETTER_BATCH, when set, is the size of every batch. Unset, a batch holds about
 * ADAPTIVE_BATCH.sendingMs of sending at the rate the last recorded batch went out at, from
 * ADAPTIVE_BATCH.minimum to ADAPTIVE_BATCH.maximum recipients. Each claim costs a commit on
 * disk (fsynced: promise 1) and a round of bookkeeping, whatever its size: at thousands of
 * messages a second a batch of 20 paid that every 5 ms, and larger batches sent 20–30 % faster
 * with a quarter less CPU per message (bench/NOTES.md). At the default NEWSLETTER_RATE of 10 a
 * second, or against a server that answers slowly, the rate makes batches of the minimum, as
 * before.
 *
 * The size is also the crash exposure: at most two batches are claimed and not recorded at any
 * moment (send-newsletter.ts), so after a crash at most 2 × the batch size end `unknown`. Sized
 * by time, that is at most about twice `sendingMs` of sending, and never more than
 * 2 × ADAPTIVE_BATCH.maximum recipients.
 */
import type { Millis } from '../domain/types.js';

export const ADAPTIVE_BATCH = { minimum: 20, maximum: 200, sendingMs: 100 } as const;

export class BatchSizer {
  /** Messages per millisecond, as the last recorded batch showed; null until two are recorded. */
  private rate: number | null = null;
  private lastRecordedAt: Millis | null = null;

  /** `fixed`: NEWSLETTER_BATCH, or null to size batches by the rate reached. */
  constructor(private readonly fixed: number | null) {}

  /** The size of the claim about to be made. */
  next(): number {
    if (this.fixed !== null) return this.fixed;
    // Until a rate is known (the first batches), the minimum: nothing is known yet.
    if (this.rate === null) return ADAPTIVE_BATCH.minimum;
    const size = Math.round(this.rate * ADAPTIVE_BATCH.sendingMs);
    return Math.min(ADAPTIVE_BATCH.maximum, Math.max(ADAPTIVE_BATCH.minimum, size));
  }

  /**
   * A batch of `size` recipients has every outcome recorded, at `now`. Batches are recorded in
   * the order they were claimed, so the time since the one before is what this one took to go
   * out once the one before had: the recent rate, which a batch of the minimum size already shows
   * (a rate over the whole run would carry the start, and small batches, for thousands more).
   */
  recordedBatch(size: number, now: Millis): void {
    if (this.lastRecordedAt !== null) this.rate = size / Math.max(1, now - this.lastRecordedAt);
    this.lastRecordedAt = now;
  }
}
