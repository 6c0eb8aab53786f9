/**
 * The ledger's arithmetic, decided once for both stores: what one outcome write carries, which
 * outcomes keep the server's reply as their `reason`, and how rows are counted. Pure.
 */
import type { DeliveryCounts, DeliveryState, Millis, RunCounts } from './types.js';

/** A row's new state, decided by the engine, written only if this run still holds the claim. */
export interface OutcomeWrite {
  deliveryId: number;
  state: Exclude<DeliveryState, 'claimed' | 'skipped'>;
  attempts: number;
  nextAttemptAt: Millis | null;
  smtpReply: string | null;
  queueId: string | null;
  /** Set when the reply means the address must never be mailed again (5.1.x). */
  suppressAddress: { address: string; reason: string } | null;
}

/** Rows per state as written (a `retry` of a cancelled newsletter counts as `skipped`). */
export interface StateTally {
  sent: number;
  failed: number;
  retry: number;
  unknown: number;
  skipped: number;
}

/**
 * The `reason` an outcome write records: the server's reply when the row ends `failed` or
 * `unknown` (what an operator acts on: status, doctor, reconcile show it), nothing otherwise
 * (`sent` and `retry` keep the reply in `smtp_reply` only).
 */
export function outcomeReason(write: Pick<OutcomeWrite, 'state' | 'smtpReply'>): string | null {
  return write.state === 'failed' || write.state === 'unknown' ? write.smtpReply : null;
}

export function emptyTally(): StateTally {
  return { sent: 0, failed: 0, retry: 0, unknown: 0, skipped: 0 };
}

/**
 * What a batch of fenced writes did: `applied` landed, the rest were refused by the fence (this
 * run no longer held those rows); `cancelled` of the applied retries were written `skipped`.
 */
export function fencedResult(
  writes: readonly OutcomeWrite[],
  applied: readonly OutcomeWrite[],
  cancelled: number,
): { applied: number; refused: number; recorded: StateTally } {
  return {
    applied: applied.length,
    refused: writes.length - applied.length,
    recorded: tallyWrites(applied, cancelled),
  };
}

/** The writes that were applied, by state; `cancelled` of their retries were written `skipped`. */
export function tallyWrites(applied: readonly OutcomeWrite[], cancelled: number): StateTally {
  const tally = emptyTally();
  for (const write of applied) tally[write.state] += 1;
  tally.retry -= cancelled;
  tally.skipped += cancelled;
  return tally;
}

/**
 * A run's totals as its end stores them: what the run counted itself, plus what its end wrote
 * (`recorded`: its late outcomes; `unknown`: rows handed over whose outcome it never learnt).
 */
export function runTotals(counted: RunCounts, recorded: StateTally, unknown: number): RunCounts {
  return {
    sent: counted.sent + recorded.sent,
    failed: counted.failed + recorded.failed,
    retry: counted.retry + recorded.retry,
    unknown: counted.unknown + recorded.unknown + unknown,
    skipped: counted.skipped + recorded.skipped,
  };
}

/**
 * A newsletter's counts from its rows per state and its pending recipients: the audience is
 * their sum, never a stored number, so the counts always add up.
 */
export function deliveryCounts(
  states: Iterable<readonly [DeliveryState, number]>,
  pending: number,
): DeliveryCounts {
  const counts: DeliveryCounts = {
    audience: pending,
    pending,
    claimed: 0,
    sent: 0,
    failed: 0,
    retry: 0,
    unknown: 0,
    skipped: 0,
  };
  for (const [state, n] of states) {
    counts[state] = n;
    counts.audience += n;
  }
  return counts;
}
