/**
 * `newsletter prune --sent-before DATE`: which newsletters may lose their ledger rows, decided
 * once for both stores. Pure.
 *
 * The ledger is what keeps "never twice" while a newsletter can still send, and what an operator
 * reads to settle an `unknown`. Once a newsletter is final (sent, cancelled or failed) and has no
 * row a person or a run may still act on, its rows only answer "how many?": that answer is kept
 * on the newsletter row (`pruned_counts`), and `counts` reads it from there, so `show` and
 * `status` print the same numbers after a prune as before. Suppressions, opt-outs and bounces are
 * not ledger rows and are never pruned.
 */
import type { DeliveryCounts, DeliveryState, Millis, NewsletterStatus } from './types.js';

/** Statuses that never send again on their own. `sending` (even reopened by reconcile) is not one. */
export const PRUNABLE_STATUSES: readonly NewsletterStatus[] = ['sent', 'cancelled', 'failed'];

/**
 * Rows that still need someone: `unknown` waits for `reconcile`, `claimed` for its run (or
 * reconcile, if stranded), `retry` for a run. A newsletter holding any of them is left alone.
 */
export const UNSETTLED_STATES: readonly DeliveryState[] = ['unknown', 'claimed', 'retry'];

/**
 * Rows deleted per transaction. The SQLite store holds the single write lock while it deletes;
 * a few thousand rows take milliseconds, so a send-due starting meanwhile waits far less than its
 * busy timeout, where one statement deleting a million rows could make it give up.
 */
export const PRUNE_BATCH = 5000;

/** A newsletter as the prune looks at it. */
export interface PruneCandidate {
  newsletterId: number;
  subject: string;
  status: NewsletterStatus;
  finishedAt: Millis | null;
  /** Ledger rows it holds now. */
  ledgerRows: number;
  /** Rows in UNSETTLED_STATES. */
  unsettled: number;
}

/** Why a newsletter's ledger was left as it is. */
export type PruneKeptReason = 'not-final' | 'unsettled' | 'too-recent' | 'nothing-to-delete';

export type PruneDecision = { prune: true } | { prune: false; reason: PruneKeptReason };

/** The rule the stores apply again inside their transaction, where a newsletter cannot change under it. */
export function pruneDecision(candidate: PruneCandidate, sentBefore: Millis): PruneDecision {
  if (!(PRUNABLE_STATUSES as readonly string[]).includes(candidate.status))
    return { prune: false, reason: 'not-final' };
  if (candidate.finishedAt === null || candidate.finishedAt >= sentBefore)
    return { prune: false, reason: 'too-recent' };
  if (candidate.unsettled > 0) return { prune: false, reason: 'unsettled' };
  if (candidate.ledgerRows === 0) return { prune: false, reason: 'nothing-to-delete' };
  return { prune: true };
}

/** Why a newsletter was left alone, in the words `prune` prints. */
export function keptBecause(candidate: PruneCandidate, reason: PruneKeptReason): string {
  const which = `newsletter ${candidate.newsletterId}`;
  switch (reason) {
    case 'not-final':
      return `${which} is ${candidate.status}, not final: its ledger is never pruned.`;
    case 'unsettled':
      return `${which} still has ${candidate.unsettled} unknown, claimed or retry deliveries: settle them (\`newsletter reconcile ${candidate.newsletterId}\`) before pruning it.`;
    case 'too-recent':
      return `${which} finished on or after the date given.`;
    case 'nothing-to-delete':
      return `${which} has no ledger rows left.`;
  }
}

/** The counts kept on a pruned newsletter's row, as stored (JSON text, or parsed by the driver). */
export function storedCounts(stored: unknown): DeliveryCounts | null {
  if (stored === null || stored === undefined) return null;
  const value = (typeof stored === 'string' ? JSON.parse(stored) : stored) as Partial<DeliveryCounts>;
  const n = (key: keyof DeliveryCounts) => Number(value[key] ?? 0);
  return {
    audience: n('audience'),
    pending: n('pending'),
    claimed: n('claimed'),
    sent: n('sent'),
    failed: n('failed'),
    retry: n('retry'),
    unknown: n('unknown'),
    skipped: n('skipped'),
  };
}
