/**
 * A newsletter's whole life (issue 14): which statuses may be edited, scheduled again or deleted,
 * and the sentences that say why not. The stores check these under their lock
 * (src/store/{sqlite,postgres}/newsletter-life.ts); the commands only present the answer.
 *
 * - edit: while nothing has been sent from its content (draft, scheduled, and failed: a failed
 *   build sent nothing, and `edit --template` is how it is fixed). From `sending` on, the body is
 *   frozen with the ledger (promise 3); cancel or copy instead.
 * - schedule: a draft, a scheduled one (moved), or a failed one once fixed: its build is checked
 *   again by `schedule` before it is due, and again by the run that sends it.
 * - delete: a draft, a failed or a cancelled newsletter from which nothing may have reached
 *   anyone: no ledger row `sent`, `unknown` (may have been delivered) or `claimed` (a run may be
 *   handing it over), counted in kept counts too after a prune. The ledger is the truth of what
 *   was sent, so a newsletter that sent anything is kept for ever (prune shrinks it).
 */
import type { DeliveryCounts, NewsletterStatus } from './types.js';

export const EDITABLE: readonly NewsletterStatus[] = ['draft', 'scheduled', 'failed'];
export const SCHEDULABLE: readonly NewsletterStatus[] = ['draft', 'scheduled', 'failed'];
export const DELETABLE: readonly NewsletterStatus[] = ['draft', 'failed', 'cancelled'];

/** Ledger states of a message that may have reached its recipient: they keep a newsletter. */
export const MAY_HAVE_REACHED = ['sent', 'unknown', 'claimed'] as const;

/** Of a pruned newsletter's kept counts (its rows are gone), those that keep it. */
export function reachedInKeptCounts(counts: Partial<DeliveryCounts> | null): number {
  if (counts === null) return 0;
  return MAY_HAVE_REACHED.reduce((sum, state) => sum + (counts[state] ?? 0), 0);
}

export type DeleteOutcome =
  | { deleted: true; ledgerRows: number }
  | { deleted: false; status: NewsletterStatus; mayHaveReached: number };

/** A status as a sentence says it: "newsletter 3 failed to build", never "is failed". */
export function statusInWords(status: NewsletterStatus): string {
  switch (status) {
    case 'draft':
      return 'is a draft';
    case 'failed':
      return 'failed to build';
    case 'sent':
      return 'was sent already';
    default:
      return `is ${status}`;
  }
}

export function notEditable(id: number, status: NewsletterStatus): string {
  return `Newsletter ${id} ${statusInWords(status)}; only a draft, a scheduled or a failed newsletter can be edited. Copy it instead: \`newsletter copy ${id}\` makes a new draft from it.`;
}

export function notSchedulable(id: number, status: NewsletterStatus): string {
  return `Newsletter ${id} ${statusInWords(status)}; only a draft, a scheduled or a failed newsletter can be scheduled. \`newsletter copy ${id}\` makes a new draft from it.`;
}

export function notDeletable(id: number, outcome: Extract<DeleteOutcome, { deleted: false }>): string {
  if (!DELETABLE.includes(outcome.status)) {
    const hint =
      outcome.status === 'scheduled' || outcome.status === 'sending'
        ? ` Cancel it first (\`newsletter cancel ${id}\`).`
        : ' Its ledger is the record of what was sent; `newsletter prune` shrinks it.';
    return `Newsletter ${id} ${statusInWords(outcome.status)}; only a draft, a failed or a cancelled newsletter can be deleted.${hint}`;
  }
  return `Newsletter ${id} ${statusInWords(outcome.status)} but ${outcome.mayHaveReached} of its messages were sent or may have been (sent, unknown or claimed); it is kept as the record of what was sent. \`newsletter prune\` shrinks it.`;
}
