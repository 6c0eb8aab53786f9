/**
 * What `newsletter reconcile` may do, decided once for both stores (their SQL only carries it out).
 *
 * Settleable rows: every `unknown` row, and every `claimed` row whose run is closed or missing, a
 * "stranded" claim. Older versions could close a run and leave its rows `claimed`; nothing moves
 * those on its own (expiry only looks at open runs), and the message may have been handed over,
 * so they are treated exactly as `unknown`. A `claimed` row of a live run (its runs row has no
 * `ended_at`) is never touched: that run is sending it and records the outcome itself.
 *
 * - `mark-sent`: settleable → `sent` (the server's log shows the Message-ID delivered).
 * - `resend`: settleable → `retry`, due now, same Message-ID; a `sent` newsletter goes back to
 *   `sending` (its audience stays closed) so that the next run sends them.
 *
 * A cancelled newsletter sends nothing, ever: `resend` is refused there and changes nothing (exit
 * 4 means "nothing was changed"), while `mark-sent` records what was delivered. Its `retry` rows
 * wait for a claim that never comes, so `mark-sent` also writes them `skipped`, reason
 * "cancelled" (LEDGER_REASON.cancelled), as a cancel does: the one final state they can have,
 * with no decision for the operator to make, which is why they are not limited to the addresses
 * given.
 */
import type { NewsletterStatus } from './types.js';

export type ReconcileAction = 'mark-sent' | 'resend';

export const MARKED_SENT_REASON = 'marked sent by an operator (reconcile)';
export const RESEND_REASON = 'resend requested by an operator (reconcile)';

export interface ReconcilePlan {
  /** Settle the settleable rows (false: the action is refused, and `refused` says why). */
  settle: boolean;
  refused: 'cancelled' | null;
  /** Write the newsletter's `retry` rows `skipped`, reason "cancelled". */
  skipRetries: boolean;
  /** The `reason` a settled row records: who settled it, and how. */
  reason: string;
}

export function planReconcile(status: NewsletterStatus, action: ReconcileAction): ReconcilePlan {
  const reason = action === 'mark-sent' ? MARKED_SENT_REASON : RESEND_REASON;
  if (status !== 'cancelled') return { settle: true, refused: null, skipRetries: false, reason };
  return action === 'resend'
    ? { settle: false, refused: 'cancelled', skipRetries: false, reason }
    : { settle: true, refused: null, skipRetries: true, reason };
}

/** What a reconcile changed, and what it left alone and why. */
export interface ReconcileResult {
  /** Rows settled: `unknown` and stranded `claimed` ones together. */
  changed: number;
  /** Of `changed`, the rows that were stranded `claimed` ones. */
  stranded: number;
  /** Addresses given that had nothing to settle (not unknown, not stranded): left as they were. */
  notUnknown: string[];
  /** Of `notUnknown`, the addresses a live run holds `claimed`: never touched, that run records them. */
  claimedByLiveRun: string[];
  /** `retry` rows of a cancelled newsletter written `skipped`, reason "cancelled". */
  cancelledRetries: number;
  /** Why the action itself was refused (then nothing unknown or stranded changed), or null. */
  refused: 'cancelled' | null;
}

/** A result before any row is looked at: nothing changed yet, the refusal (if any) decided. */
export function startResult(plan: ReconcilePlan): ReconcileResult {
  return {
    changed: 0,
    stranded: 0,
    notUnknown: [],
    claimedByLiveRun: [],
    cancelledRetries: 0,
    refused: plan.refused,
  };
}

/** The `reconcile` event both stores record with the change, in the same transaction. */
export function reconcileEvent(
  newsletterId: number,
  action: ReconcileAction,
  addresses: string[] | null,
  result: ReconcileResult,
): Record<string, unknown> {
  const { changed, stranded, cancelledRetries, refused } = result;
  return { newsletterId, action, changed, stranded, cancelledRetries, refused, addresses };
}

/**
 * Takes addresses whose `retry` row was just written `skipped` (a cancelled newsletter) out of the
 * "left as it was" lists: they were settled, only not by the action asked for.
 */
export function dropSettled(result: ReconcileResult, skipped: ReadonlySet<string>): void {
  if (skipped.size === 0) return;
  result.notUnknown = result.notUnknown.filter((address) => !skipped.has(address));
  result.claimedByLiveRun = result.claimedByLiveRun.filter((address) => !skipped.has(address));
}
