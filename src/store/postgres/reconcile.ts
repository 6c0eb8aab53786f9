/**
 * What an operator settles on PostgreSQL: the stranded claims `status` and `doctor` count, and
 * `reconcile`, which carries out src/domain/reconcile.ts's decisions row by row.
 */
import { LEDGER_REASON } from '../../domain/ledger-reasons.js';
import { noSuchNewsletter } from '../../domain/not-found.js';
import type { ReconcileAction, ReconcileResult } from '../../domain/reconcile.js';
import { dropSettled, planReconcile, reconcileEvent, startResult } from '../../domain/reconcile.js';
import type { Millis, NewsletterStatus } from '../../domain/types.js';
import { strandedClaim } from '../conditions.js';
import type { StrandedClaims } from '../store.js';
import type { PgDb } from './db.js';

export function strandedClaims(pg: PgDb): Promise<StrandedClaims[]> {
  return pg.rows<StrandedClaims>(
    `SELECT d.newsletter_id AS "newsletterId", count(*) AS count FROM deliveries d
     WHERE ${strandedClaim('d')} GROUP BY d.newsletter_id ORDER BY d.newsletter_id`,
  );
}

export function reconcile(
  pg: PgDb,
  newsletterId: number,
  action: ReconcileAction,
  addresses: string[] | null,
  now: Millis,
): Promise<ReconcileResult> {
  return pg.tx(async (sql) => {
    // The newsletter FOR UPDATE: a cancel (or a completion) waits for this reconcile, and the
    // status read here is the one the retry rows and the refusal are decided on. Claims hold
    // it FOR SHARE, so none is in flight while the rows change.
    const [newsletter] = (
      await sql.query<{ status: NewsletterStatus }>(
        'SELECT status FROM newsletters WHERE id = $1 FOR UPDATE',
        [newsletterId],
      )
    ).rows;
    if (!newsletter) throw noSuchNewsletter(newsletterId);
    const plan = planReconcile(newsletter.status, action);
    const targets =
      addresses ??
      (
        await sql.query<{ address: string }>(
          `SELECT address FROM deliveries
           WHERE newsletter_id = $1 AND (state = 'unknown' OR ${strandedClaim('deliveries')}) ORDER BY id`,
          [newsletterId],
        )
      ).rows.map((r) => r.address);
    // Only unknown and stranded rows can be settled: an operator cannot turn a `sent` into a
    // resend, nor take a row from a live run. The state conditions are the fence.
    const settle = (state: string) =>
      action === 'mark-sent'
        ? `UPDATE deliveries SET state = 'sent', reason = $1, updated_at = $2
           WHERE newsletter_id = $3 AND address = $4 AND ${state}`
        : `UPDATE deliveries SET state = 'retry', next_attempt_at = $2, reason = $1, updated_at = $2
           WHERE newsletter_id = $3 AND address = $4 AND ${state}`;
    const settleUnknown = settle("state = 'unknown'");
    const settleStranded = settle(strandedClaim('deliveries'));
    const result = startResult(plan);
    for (const address of targets) {
      const values = [plan.reason, now, newsletterId, address];
      if (plan.settle) {
        if ((await sql.query(settleUnknown, values)).rowCount > 0) {
          result.changed += 1;
          continue;
        }
        if ((await sql.query(settleStranded, values)).rowCount > 0) {
          result.changed += 1;
          result.stranded += 1;
          continue;
        }
      } else {
        const held = await sql.query(
          `SELECT 1 FROM deliveries WHERE newsletter_id = $1 AND address = $2
             AND (state = 'unknown' OR ${strandedClaim('deliveries')})`,
          [newsletterId, address],
        );
        if (held.rowCount > 0) continue; // held by the refusal, which the result carries
      }
      result.notUnknown.push(address);
      const live = await sql.query(
        `SELECT 1 FROM deliveries d JOIN runs r ON r.id = d.run_id
         WHERE d.newsletter_id = $1 AND d.address = $2 AND d.state = 'claimed' AND r.ended_at IS NULL`,
        [newsletterId, address],
      );
      if (live.rowCount > 0) result.claimedByLiveRun.push(address);
    }
    // The retry rows last, in the same order as the repair at a run's start (stranded rows, then
    // retries), so that the two never wait for each other's rows the other way round.
    if (plan.skipRetries) {
      const skipped = await sql.query<{ address: string }>(
        `UPDATE deliveries SET state = 'skipped', reason = $1, next_attempt_at = NULL, updated_at = $2
         WHERE newsletter_id = $3 AND state = 'retry' RETURNING address`,
        [LEDGER_REASON.cancelled, now, newsletterId],
      );
      result.cancelledRetries = skipped.rowCount;
      dropSettled(result, new Set(skipped.rows.map((r) => r.address)));
    }
    if (action === 'resend' && result.changed > 0) {
      // A `sent` newsletter whose unknowns are resent goes back to `sending` so that runs pick it up.
      // finished_at stays set: its audience is closed, so only these rows go out again.
      await sql.query(
        "UPDATE newsletters SET status = 'sending', updated_at = $1 WHERE id = $2 AND status = 'sent'",
        [now, newsletterId],
      );
    }
    await sql.query('INSERT INTO events (at, kind, detail) VALUES ($1, $2, $3::jsonb)', [
      now,
      'reconcile',
      JSON.stringify(reconcileEvent(newsletterId, action, addresses, result)),
    ]);
    return result;
  });
}
