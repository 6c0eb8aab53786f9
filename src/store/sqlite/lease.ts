/**
 * Runs and their leases on SQLite: register, renew, expire, end. (Its twin for several hosts:
 * ../postgres/lease.ts. The contract: SendStore.)
 *
 * The invariant. No row stays `claimed` by a run that is gone (promise 2), and a run that is gone
 * can never act again. A run holds its claims while its row is open (`ended_at IS NULL`); renewing,
 * claiming (claim.ts) and recording (fence.ts) all require that, and `ended_at` only ever goes
 * from NULL to a time. Once a run is ended, by itself (endRun) or by another run (expireRuns,
 * when its lease passed or its process is gone), none of its rows is `claimed`: what may have
 * been handed over is `unknown`, what provably was not goes back to `retry`.
 *
 * The lock. expireRuns and endRun are each one BEGIN IMMEDIATE transaction: a run's row and all
 * its deliveries change together under the single write lock. An expiry and the run's own end (or
 * its outcome writes) are therefore simply ordered; whichever comes second sees the first's
 * result: endRun finds `ended_at` set and changes no delivery, a late outcome meets the fence.
 * registerRun and renewLease are single statements. Times are the caller's `now`: one database
 * file serves one host, so there is one clock.
 *
 * Why not the obvious alternative: treating the rows of a run whose lease has passed as free in
 * every query ("expired means gone") would let a run that was only paused wake up and record over
 * rows that another run has taken; and a pid means nothing on another host. So a run is ended
 * once, explicitly, in the database, and the fence on run id and state does the rest.
 */
import { emptyTally, runTotals } from '../../domain/ledger.js';
import { LEDGER_REASON } from '../../domain/ledger-reasons.js';
import type { Millis, RunInfo } from '../../domain/types.js';
import type {
  ExpiredRuns,
  RegisteredRun,
  RunEnd,
  RunRegistration,
  RunSettlement,
} from '../../engine/store.js';
import { strandedClaim } from '../conditions.js';
import { type RunRow, toRun } from '../rows.js';
import type { SqliteDb } from './db.js';
import { recordOutcomesNow, releaseNow } from './fence.js';

export function registerRun(c: SqliteDb, registration: RunRegistration): RegisteredRun {
  const { hostId, hostname, pid, pidScope, now, leaseMs } = registration;
  const result = c
    .sql(
      'INSERT INTO runs (host_id, hostname, pid, pid_scope, started_at, lease_until) VALUES (?, ?, ?, ?, ?, ?)',
    )
    .run(hostId, hostname, pid, pidScope ?? null, now, now + leaseMs);
  return toRun(c.sql('SELECT * FROM runs WHERE id = ?').get(Number(result.lastInsertRowid)) as RunRow);
}

export function renewLease(c: SqliteDb, runId: number, now: Millis, leaseMs: number): boolean {
  // A run that another run has ended (its lease had expired) cannot bring itself back: the
  // `ended_at IS NULL` condition is what makes a lost lease final.
  return (
    c.sql('UPDATE runs SET lease_until = ? WHERE id = ? AND ended_at IS NULL').run(now + leaseMs, runId)
      .changes === 1
  );
}

export function liveRuns(c: SqliteDb): RunInfo[] {
  return (c.sql('SELECT * FROM runs WHERE ended_at IS NULL ORDER BY id').all() as RunRow[]).map(toRun);
}

export function listRuns(c: SqliteDb, limit: number): RunInfo[] {
  return (c.sql('SELECT * FROM runs ORDER BY id DESC LIMIT ?').all(limit) as RunRow[]).map(toRun);
}

export function expireRuns(c: SqliteDb, now: Millis, deadRunIds: number[]): ExpiredRuns {
  return c.immediate(() => {
    const expired = c
      .sql(
        `SELECT id FROM runs WHERE ended_at IS NULL
             AND (lease_until < ? OR id IN (SELECT value FROM json_each(?)))`,
      )
      .all(now, JSON.stringify(deadRunIds)) as { id: number }[];
    let unknown = 0;
    for (const { id } of expired) {
      // Claimed rows of a run that is gone: the message may or may not have been handed over.
      // `unknown` is never resent on its own (promise 1); an operator settles it (reconcile).
      const changed = c
        .sql(
          `UPDATE deliveries SET state = 'unknown', updated_at = ?, reason = ?
             WHERE run_id = ? AND state = 'claimed'`,
        )
        .run(now, LEDGER_REASON.runGone, id).changes;
      unknown += changed;
      c.sql(
        `UPDATE runs SET ended_at = ?, outcome = 'lost', unknown = unknown + ?,
             error = 'lease expired or process gone; its claims became unknown' WHERE id = ?`,
      ).run(now, changed, id);
    }
    return { runs: expired.length, unknown, ...heal(c, now) };
  });
}

/**
 * What older versions could leave behind, settled as the current code would have: `claimed`
 * rows of a run that is closed (its error path closed it without settling them) become
 * `unknown`; `retry` rows of a cancelled newsletter (written by a batch in flight during the
 * cancel) become `skipped`. Both use a partial or leading index, so a healthy ledger costs a
 * lookup that finds nothing.
 */
function heal(c: SqliteDb, now: Millis): { stranded: number; cancelledRetries: number } {
  const stranded = c
    .sql(
      `UPDATE deliveries SET state = 'unknown', updated_at = ?, reason = ?
         WHERE ${strandedClaim('deliveries')}`,
    )
    .run(now, LEDGER_REASON.stranded).changes;
  const cancelledRetries = c
    .sql(
      `UPDATE deliveries SET state = 'skipped', reason = ?, next_attempt_at = NULL, updated_at = ?
         WHERE state = 'retry' AND newsletter_id IN (SELECT id FROM newsletters WHERE status = 'cancelled')`,
    )
    .run(LEDGER_REASON.cancelled, now).changes;
  return { stranded, cancelledRetries };
}

export function endRun(c: SqliteDb, runId: number, end: RunEnd, now: Millis): RunSettlement {
  return c.immediate((): RunSettlement => {
    const run = c.sql('SELECT ended_at FROM runs WHERE id = ?').get(runId) as
      | { ended_at: number | null }
      | undefined;
    const settlement: RunSettlement = { settled: false, recorded: emptyTally(), unknown: 0, released: 0 };
    if (run && run.ended_at === null) {
      settlement.settled = true;
      settlement.recorded = recordOutcomesNow(c, runId, end.outcomes, now).recorded;
      settlement.unknown = c
        .sql(
          `UPDATE deliveries SET state = 'unknown', reason = ?, updated_at = ?
             WHERE run_id = ? AND state = 'claimed' AND id IN (SELECT value FROM json_each(?))`,
        )
        .run(LEDGER_REASON.endedBeforeRecording, now, runId, JSON.stringify(end.handedOver)).changes;
      settlement.released = releaseNow(c, runId, null, now);
    }
    // `unknown` adds: an expiry that ended the run first has counted its own.
    c.sql(
      `UPDATE runs SET ended_at = coalesce(ended_at, @now),
           outcome = CASE WHEN ended_at IS NULL THEN @outcome ELSE outcome END,
           sent = @sent, failed = @failed, retry = @retry, unknown = unknown + @unknown, skipped = @skipped,
           error = coalesce(error, @error)
         WHERE id = @runId`,
    ).run({
      now,
      outcome: end.outcome,
      error: end.error,
      runId,
      ...runTotals(end.counts, settlement.recorded, settlement.unknown),
    });
    return settlement;
  });
}
