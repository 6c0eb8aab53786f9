/**
 * The size of each claim (src/engine/batch-size.ts): NEWSLETTER_BATCH when set; unset, about
 * 100 ms of sending at the rate the last recorded batch went out at, from 20 to 200 recipients.
 */
import { expect, it } from 'vitest';
import { ADAPTIVE_BATCH, BatchSizer } from '../../src/engine/batch-size.js';

it('NEWSLETTER_BATCH set: every batch is that size, whatever the rate', () => {
  const sizer = new BatchSizer(7);
  expect(sizer.next()).toBe(7);
  sizer.recordedBatch(7, 0);
  sizer.recordedBatch(7, 1);
  expect(sizer.next()).toBe(7);
});

it('unset: the minimum until two batches are recorded, then 100 ms of the last one’s rate, within 20..200', () => {
  const sizer = new BatchSizer(null);
  expect(sizer.next()).toBe(ADAPTIVE_BATCH.minimum);
  // One batch recorded: no rate yet, however long it took.
  sizer.recordedBatch(20, 1_000);
  expect(sizer.next()).toBe(20);
  // The next 20 in 40 ms: 500 a second, 50 per 100 ms.
  sizer.recordedBatch(20, 1_040);
  expect(sizer.next()).toBe(50);
  // 50 in 12 ms: 4,167 a second, capped at 200.
  sizer.recordedBatch(50, 1_052);
  expect(sizer.next()).toBe(ADAPTIVE_BATCH.maximum);
  // A stall (200 in 2 s) brings it back down to the minimum; two recorded at once count as 1 ms.
  sizer.recordedBatch(200, 3_052);
  expect(sizer.next()).toBe(20);
  sizer.recordedBatch(20, 3_052);
  expect(sizer.next()).toBe(200);
});

it('at the default 10 a second, or against a slow server, batches stay at 20', () => {
  const sizer = new BatchSizer(null);
  sizer.recordedBatch(20, 0);
  sizer.recordedBatch(20, 2_000);
  expect(sizer.next()).toBe(20);
  // 150 a second (three connections at 20 ms a reply): 15 per 100 ms, so the minimum.
  sizer.recordedBatch(20, 2_133);
  expect(sizer.next()).toBe(20);
});
