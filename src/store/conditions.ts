/**
 * SQL conditions that both dialects use, written once: the same text reads the same in SQLite
 * and PostgreSQL. Each names the rule it carries out; where the rule is also asked outside SQL,
 * the rule itself lives in src/domain and this is its translation.
 */
import { AUDIENCE_CLOSED_STATUSES, REOPENED_STATUS } from '../domain/audience.js';

/**
 * The audience of the newsletter in parameter `param`, as a condition on subscriber `s`.
 * `afterParam` repeats a claim's `s.id > …` bound inside: without it the PostgreSQL planner chose a
 * merge semi join that read the memberships index from its start on every claim, so each claim
 * cost more the further a send had got (14 ms at 60,000 of 100,000 recipients; 0.09 ms with it).
 */
export function inAudience(param: string, afterParam?: string): string {
  const bound = afterParam ? ` AND m.subscriber_id > ${afterParam}` : '';
  // A member who left one of the lists (list_opt_outs, migrations/*/list_opt_outs) is in the
  // audience only through another list of the newsletter they have not left.
  return `EXISTS (SELECT 1 FROM newsletter_lists nl JOIN memberships m ON m.list_id = nl.list_id
                  JOIN lists l ON l.id = nl.list_id
                  WHERE nl.newsletter_id = ${param} AND m.subscriber_id = s.id${bound}
                    AND ${notOptedOut('l.name', 's.address')})`;
}

/**
 * The address in `address` has not left the list named by `listName` (a per-list unsubscribe,
 * kept in list_opt_outs by list name and address so that it outlives remove, --sync and a list
 * deleted and made again). Every audience condition joins this to its memberships.
 */
export function notOptedOut(listName: string, address: string): string {
  return `NOT EXISTS (SELECT 1 FROM list_opt_outs o WHERE o.list_name = ${listName} AND o.address = ${address})`;
}

/**
 * Subscriber `s` would be mailed: src/domain/ledger-reasons.ts's `skipReason` is null for it (not
 * suppressed, not unsubscribed). Used to count, never to claim: the claim writes a skipped row.
 */
export function reachable(s: string): string {
  return `(${s}.status = 'active' AND NOT EXISTS (SELECT 1 FROM suppressions sup WHERE sup.address = ${s}.address))`;
}

/**
 * src/domain/audience.ts's `audienceClosed` for newsletter row `n` (an alias, or `newsletters`):
 * closed when sent or failed, or when reopened by `reconcile --resend` (`sending` with
 * `finished_at` set). The contract suite checks the two agree for every status.
 */
export function audienceClosedSql(n: string): string {
  const closed = AUDIENCE_CLOSED_STATUSES.map((status) => `'${status}'`).join(', ');
  return `(${n}.status IN (${closed}) OR (${n}.status = '${REOPENED_STATUS}' AND ${n}.finished_at IS NOT NULL))`;
}

/** True for a row (of table `deliveries`, unaliased) whose newsletter was cancelled. */
export const IS_CANCELLED =
  "EXISTS (SELECT 1 FROM newsletters n WHERE n.id = deliveries.newsletter_id AND n.status = 'cancelled')";

/**
 * The SQL condition for a stranded claim: a delivery `claimed` by a run that is closed
 * (`ended_at` set) or missing. Both stores use this one text wherever they look for stranded rows
 * (status and doctor count them, reconcile settles them), so that what a person is shown is
 * exactly what reconcile acts on.
 *
 * The fence. A run's `ended_at` only ever goes from NULL to a time, never back (renewLease and
 * claims require it NULL), so a row this condition matches belongs to a run that can never claim,
 * renew or be expired again: nothing but an operator will move it. A row of a run that is still
 * open never matches, whatever its lease says: that run records it, or expiry turns it `unknown`.
 * In PostgreSQL the subquery reads the statement's snapshot; a run that closes after it is seen
 * as open, which errs on the side of leaving its rows alone.
 *
 * `row` is how the statement names the deliveries table (`d`, or `deliveries` in an UPDATE).
 */
export function strandedClaim(row: string): string {
  return `(${row}.state = 'claimed'
           AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.id = ${row}.run_id AND r.ended_at IS NULL))`;
}
