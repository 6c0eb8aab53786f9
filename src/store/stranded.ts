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
