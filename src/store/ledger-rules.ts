/**
 * What both stores decide the same way when they write outcomes: which rows a cancel makes final,
 * and how the rows written are counted. The SQL fragment reads the same in both dialects.
 */
import type { OutcomeWrite, StateTally } from '../engine/store.js';

/** True for a row (of table `deliveries`, unaliased) whose newsletter was cancelled. */
export const IS_CANCELLED =
  "EXISTS (SELECT 1 FROM newsletters n WHERE n.id = deliveries.newsletter_id AND n.status = 'cancelled')";

export function emptyTally(): StateTally {
  return { sent: 0, failed: 0, retry: 0, unknown: 0, skipped: 0 };
}

/** The writes that were applied, by state; `cancelled` of their retries were written `skipped`. */
export function tallyWrites(applied: readonly OutcomeWrite[], cancelled: number): StateTally {
  const tally = emptyTally();
  for (const write of applied) tally[write.state] += 1;
  tally.retry -= cancelled;
  tally.skipped += cancelled;
  return tally;
}
