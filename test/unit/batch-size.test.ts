/**
 * The size of each claim (src/engine/batch-size.ts): NEWSLETTER_BATCH when set; unset, about
 * 100 ms of sending at the rate recorded so far, from 20 to 200 recipients.
 */
import { expect, it } from 'vitest';
import { ADAPTIVE_BATCH, BatchSizer } from '../../src/engine/batch-size.js';

it('NEWSLETTER_BATCH set: every batch is that size, whatever the rate', () => {
  const sizer = new BatchSizer(7);
  expect(sizer.next(0)).toBe(7);
  sizer.recordedBatch(7);
  expect(sizer.next(1)).toBe(7);
});

it('unset: the minimum until an outcome is recorded, then 100 ms of the rate reached, within 20..200', () => {
  const sizer = new BatchSizer(null);
  expect(sizer.next(1_000)).toBe(ADAPTIVE_BATCH.minimum);
  // Nothing recorded yet: still the minimum, however much time passed.
  expect(sizer.next(2_000)).toBe(20);
  // 20 in the first 40 ms: 500 a second, 50 per 100 ms.
  const fast = new BatchSizer(null);
  fast.next(0);
  fast.recordedBatch(20);
  expect(fast.next(40)).toBe(50);
  // Then 2,000 more within the next 460 ms: 4,040 a second, capped at 200.
  fast.recordedBatch(2_000);
  expect(fast.next(500)).toBe(ADAPTIVE_BATCH.maximum);
});

it('at the default 10 a second, or against a slow server, batches stay at 20', () => {
  const sizer = new BatchSizer(null);
  sizer.next(0);
  sizer.recordedBatch(20);
  expect(sizer.next(2_000)).toBe(20);
  sizer.recordedBatch(20);
  // 150 a second (three connections at 20 ms a reply): 15 per 100 ms, so the minimum.
  const slow = new BatchSizer(null);
  slow.next(0);
  slow.recordedBatch(300);
  expect(slow.next(2_000)).toBe(20);
});
