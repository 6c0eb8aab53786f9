/**
 * What an operator settles on SQLite: the stranded claims `status` and `doctor` count, and
 * `reconcile`, which carries out src/domain/reconcile.ts's decisions row by row.
 */
import { LEDGER_REASON } from '../../domain/ledger-reasons.js';
import { noSuchNewsletter } from '../../domain/not-found.js';
import type { ReconcileAction, ReconcileResult } from '../../domain/reconcile.js';
import { dropSettled, planReconcile, reconcileEvent, startResult } from '../../domain/reconcile.js';
import type { Millis, NewsletterStatus } from '../../domain/types.js';
import { strandedClaim } from '../conditions.js';
import type { StrandedClaims } from '../store.js';
import type { SqliteDb } from './db.js';

export function strandedClaims(c: SqliteDb): StrandedClaims[] {
  return c
    .sql(
      `SELECT d.newsletter_id AS newsletterId, count(*) AS count FROM deliveries d
         WHERE ${strandedClaim('d')} GROUP BY d.newsletter_id ORDER BY d.newsletter_id`,
    )
    .all() as StrandedClaims[];
}

export function reconcile(
  c: SqliteDb,
  newsletterId: number,
  action: ReconcileAction,
  addresses: string[] | null,
  now: Millis,
): ReconcileResult {
  // One IMMEDIATE transaction: no run can claim, record or be expired between the reads and
  // the writes, and a cancel cannot slip in between the status read and the retry rows.
  return c.immediate(() => {
    const newsletter = c.sql('SELECT status FROM newsletters WHERE id = ?').get(newsletterId) as
      | { status: NewsletterStatus }
      | undefined;
    if (!newsletter) throw noSuchNewsletter(newsletterId);
    const plan = planReconcile(newsletter.status, action);
    const targets =
      addresses ??
      (
        c
          .sql(
            `SELECT address FROM deliveries
               WHERE newsletter_id = ? AND (state = 'unknown' OR ${strandedClaim('deliveries')}) ORDER BY id`,
          )
          .all(newsletterId) as { address: string }[]
      ).map((r) => r.address);
    // Only unknown and stranded rows can be settled: an operator cannot turn a `sent` into a
    // resend, nor take a row from a live run. The state conditions are the fence.
    const settle = (state: string) =>
      action === 'mark-sent'
        ? c.sql(
            `UPDATE deliveries SET state = 'sent', reason = @reason, updated_at = @now
               WHERE newsletter_id = @nl AND address = @address AND ${state}`,
          )
        : c.sql(
            `UPDATE deliveries SET state = 'retry', next_attempt_at = @now, reason = @reason, updated_at = @now
               WHERE newsletter_id = @nl AND address = @address AND ${state}`,
          );
    const args = (address: string) => ({ reason: plan.reason, now, nl: newsletterId, address });
    const settleUnknown = settle("state = 'unknown'");
    const settleStranded = settle(strandedClaim('deliveries'));
    const settleable = c.sql(
      `SELECT 1 FROM deliveries WHERE newsletter_id = ? AND address = ?
         AND (state = 'unknown' OR ${strandedClaim('deliveries')})`,
    );
    const heldByLiveRun = c.sql(
      `SELECT 1 FROM deliveries d JOIN runs r ON r.id = d.run_id
         WHERE d.newsletter_id = ? AND d.address = ? AND d.state = 'claimed' AND r.ended_at IS NULL`,
    );
    const result = startResult(plan);
    for (const address of targets) {
      if (plan.settle) {
        if (settleUnknown.run(args(address)).changes > 0) {
          result.changed += 1;
          continue;
        }
        if (settleStranded.run(args(address)).changes > 0) {
          result.changed += 1;
          result.stranded += 1;
          continue;
        }
      } else if (settleable.get(newsletterId, address)) {
        continue; // held by the refusal, which the result carries
      }
      result.notUnknown.push(address);
      if (heldByLiveRun.get(newsletterId, address)) result.claimedByLiveRun.push(address);
    }
    if (plan.skipRetries) {
      const skipped = c
        .sql(
          `UPDATE deliveries SET state = 'skipped', reason = ?, next_attempt_at = NULL, updated_at = ?
             WHERE newsletter_id = ? AND state = 'retry' RETURNING address`,
        )
        .all(LEDGER_REASON.cancelled, now, newsletterId) as { address: string }[];
      result.cancelledRetries = skipped.length;
      dropSettled(result, new Set(skipped.map((r) => r.address)));
    }
    if (action === 'resend' && result.changed > 0) {
      // A `sent` newsletter whose unknowns are resent goes back to `sending` so that runs pick it up.
      // finished_at stays set: its audience is closed, so only these rows go out again.
      c.sql("UPDATE newsletters SET status = 'sending', updated_at = ? WHERE id = ? AND status = 'sent'").run(
        now,
        newsletterId,
      );
    }
    c.sql('INSERT INTO events (at, kind, detail) VALUES (?, ?, ?)').run(
      now,
      'reconcile',
      JSON.stringify(reconcileEvent(newsletterId, action, addresses, result)),
    );
    return result;
  });
}
