/**
 * Non-final states that no run will ever move on its own, found the same way for `status` and
 * `doctor`, each with the exact command that settles it. The current engine does not leave them
 * behind (and repairs them at a run's start), but a database written by an older version, or one
 * a person edited, can hold them, and a person must always be able to see and settle them:
 *
 * - `stranded`: rows `claimed` by a run that is closed or missing. The message may have been
 *   handed over, so `reconcile` treats them as `unknown`: --mark-sent what the server's log shows
 *   delivered, --resend the rest. They also keep a `sending` newsletter from completing.
 * - `cancelled-retry`: `retry` rows of a cancelled newsletter. Nothing claims them again; any
 *   `reconcile` of the newsletter writes them `skipped`, reason "cancelled".
 * - `sending-idle`: a newsletter `sending` with no live run and nothing left to claim (no pending
 *   recipient, no `retry` row): the next send-due completes it, unless stranded rows keep it open,
 *   which `reconcile` settles first.
 */
import type { DeliveryCounts, Newsletter } from './types.js';

export type UnsettledKind = 'stranded' | 'cancelled-retry' | 'sending-idle';

export interface Unsettled {
  kind: UnsettledKind;
  newsletterId: number;
  /** The rows concerned: stranded, retry, or (sending-idle) the stranded rows keeping it open. */
  count: number;
  /** What was found, in one sentence. */
  message: string;
  /** The exact command that settles it. */
  command: string;
}

export interface LedgerState {
  newsletter: Newsletter;
  counts: DeliveryCounts;
  /** Rows `claimed` by a closed or missing run (Store.strandedClaims). */
  stranded: number;
}

/**
 * `openRuns`: runs whose row has no `ended_at`, whatever their lease says (a run whose lease
 * expired is still about to be expired, and its rows then become `unknown` on their own).
 */
export function findUnsettled(states: readonly LedgerState[], openRuns: number): Unsettled[] {
  const found: Unsettled[] = [];
  for (const { newsletter, counts, stranded } of states) {
    const id = newsletter.id;
    const cancelled = newsletter.status === 'cancelled';
    const settleStranded = cancelled
      ? `newsletter reconcile ${id} --mark-sent [EMAIL…]`
      : `newsletter reconcile ${id} --mark-sent|--resend [EMAIL…]`;
    if (stranded > 0) {
      found.push({
        kind: 'stranded',
        newsletterId: id,
        count: stranded,
        message:
          `newsletter ${id}: ${deliveries(stranded)} claimed by a run that has ended; they may have been ` +
          'handed to the server, and nothing settles them on its own',
        command: settleStranded,
      });
    }
    if (cancelled && counts.retry > 0) {
      const undecided = counts.unknown + stranded > 0;
      found.push({
        kind: 'cancelled-retry',
        newsletterId: id,
        count: counts.retry,
        message: `newsletter ${id} is cancelled, but ${deliveries(counts.retry)} ${counts.retry === 1 ? 'waits' : 'wait'} for a retry that never comes`,
        // Without addresses --mark-sent would also mark its unknown rows sent: name the delivered ones.
        command: undecided
          ? `newsletter reconcile ${id} --mark-sent EMAIL…`
          : `newsletter reconcile ${id} --mark-sent`,
      });
    }
    if (newsletter.status === 'sending' && openRuns === 0 && counts.pending === 0 && counts.retry === 0) {
      found.push({
        kind: 'sending-idle',
        newsletterId: id,
        count: stranded,
        message:
          stranded > 0
            ? `newsletter ${id} is sending, but no run is live and nothing is left to claim: ` +
              `${deliveries(stranded)} claimed by an ended run ${stranded === 1 ? 'keeps' : 'keep'} it open`
            : `newsletter ${id} is sending, but no run is live and nothing is left to claim: the next send-due completes it`,
        command: stranded > 0 ? settleStranded : 'newsletter send-due',
      });
    }
  }
  return found;
}

/** The human line: what was found, then how to settle it. */
export function describeUnsettled(item: Unsettled): string {
  return `${item.message}; settle with \`${item.command}\``;
}

function deliveries(n: number): string {
  return `${n} ${n === 1 ? 'delivery' : 'deliveries'}`;
}
