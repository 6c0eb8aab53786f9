/**
 * When a newsletter's audience is closed, decided once. Pure.
 *
 * A newsletter goes to the members of its lists who have no ledger row yet ("pending"). Once it
 * has been sent (or failed), its audience is closed: nobody is pending any more, whoever joins its
 * lists afterwards. A `reconcile --resend` that reopens a sent newsletter for its unknown rows sets
 * it back to `sending` but keeps `finished_at`, so that the reopened newsletter sends only those
 * rows, never people who joined its lists since.
 *
 * The stores also ask this question inside SQL statements (a count, a completion, in one
 * snapshot): src/store/conditions.ts writes the same rule as `audienceClosedSql`, built from
 * AUDIENCE_CLOSED_STATUSES and the `sending` + `finished_at` case below, and the contract suite
 * checks that both say the same for every status.
 */
import type { NewsletterStatus } from './types.js';

/** Statuses whose audience is closed outright. */
export const AUDIENCE_CLOSED_STATUSES: readonly NewsletterStatus[] = ['sent', 'failed'];

/** The status a reopened newsletter has; its audience is closed when it has a `finishedAt`. */
export const REOPENED_STATUS: NewsletterStatus = 'sending';

export function audienceClosed(newsletter: { status: string; finishedAt: unknown }): boolean {
  return (
    (AUDIENCE_CLOSED_STATUSES as readonly string[]).includes(newsletter.status) ||
    (newsletter.status === REOPENED_STATUS &&
      newsletter.finishedAt !== null &&
      newsletter.finishedAt !== undefined)
  );
}
