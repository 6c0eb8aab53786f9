/**
 * Runs and their leases on PostgreSQL, where runs on every host share one database: register,
 * renew, expire, end. (Its twin for one host: ../sqlite/lease.ts. The contract: SendStore.)
 *
 * The invariant. No row stays `claimed` by a run that is gone (promise 2), and a run that is gone
 * can never act again. A run holds its claims while its row is open (`ended_at IS NULL`); renewing,
 * claiming (claim.ts) and recording (fence.ts) all require that, and `ended_at` only ever goes
 * from NULL to a time. Once a run is ended, by itself (endRun) or by a run on any host
 * (expireRuns, when its lease passed or its process is gone), none of its rows is `claimed`.
 *
 * The locks. A run's row is the lock that orders everything done to its rows: claims and outcome
 * writes hold it FOR SHARE, endRun FOR UPDATE, and expireRuns takes the rows of the runs it ends
 * FOR UPDATE SKIP LOCKED, then their deliveries. A run that is claiming or recording right now is
 * therefore skipped, not waited for (it is alive; the next run looks again), an expiry never ends
 * a run halfway through a claim, and since every transaction takes run rows before delivery rows,
 * two hosts expiring at once cannot deadlock. renewLease is one UPDATE of the run's row: whichever
 * of a renewal and an expiry commits first wins, and the other sees its result.
 *
 * Time. The SendStore passes `now` in, and this store compares only such caller times, as the
 * SQLite one does: the contract suite (which moves time by passing a later `now`) holds unchanged,
 * and a run's local view of its lease (the engine's LeaseKeeper) is measured on the same clock as
 * the lease in the database. Between hosts that is only safe if their clocks agree, so
 * `registerRun` measures this host's clock against the database's (`clock_timestamp()`) and refuses
 * a run whose clock is off by more than a fraction of the lease (`clockTolerance`). A skewed host
 * therefore cannot end another host's live run early.
 *
 * Why not the obvious alternative: the database's own clock (`now()`) in every lease comparison
 * would make hosts agree without checking them, but the contract suite could no longer move time,
 * and the engine's local view of its lease, which it checks before every hand-over, would be on
 * another clock than the lease it guards.
 */
import { DatabaseError } from '../../domain/errors.js';
import { emptyTally, runTotals } from '../../domain/ledger.js';
import { LEDGER_REASON } from '../../domain/ledger-reasons.js';
import type { Millis, RunInfo } from '../../domain/types.js';
import type { ExpiredRuns, RunEnd, RunRegistration, RunSettlement } from '../../engine/store.js';
import { strandedClaim } from '../conditions.js';
import { type RunRow, toRun } from '../rows.js';
import type { Sql } from './connection.js';
import type { PgDb } from './db.js';
import { recordOutcomesIn, releaseIn } from './fence.js';

/**
 * How far this host's clock may be from the database's. The engine stops handing messages over
 * `min(5 s, lease/4)` before its lease ends (LeaseKeeper's margin); two hosts each within half of
 * that from the database are within the margin of each other, so no host can see another's lease
 * as expired while that run may still send.
 */
export function clockTolerance(leaseMs: number): number {
  return Math.floor(Math.min(5000, leaseMs / 4) / 2);
}

export function registerRun(pg: PgDb, registration: RunRegistration): Promise<RunInfo> {
  const { hostId, hostname, pid, now, leaseMs } = registration;
  return pg.tx(async (sql) => {
    await checkClock(sql, leaseMs);
    const [row] = (
      await sql.query<RunRow>(
        `INSERT INTO runs (host_id, hostname, pid, started_at, lease_until) VALUES ($1, $2, $3, $4, $5)
         RETURNING *`,
        [hostId, hostname, pid, now, now + leaseMs],
      )
    ).rows;
    return toRun(row!);
  });
}

/**
 * Refuses a run on a host whose wall clock is too far from the database server's (see the
 * comment at the top and `clockTolerance`). Measured with this host's real clock, never with the
 * `now` the caller passes (tests move that on purpose).
 */
async function checkClock(sql: Sql, leaseMs: number): Promise<void> {
  const before = Date.now();
  const [row] = (
    await sql.query<{ ms: number }>('SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms')
  ).rows;
  const after = Date.now();
  const skew = row!.ms - (before + after) / 2;
  const tolerance = clockTolerance(leaseMs);
  if (Math.abs(skew) - (after - before) / 2 <= tolerance) return;
  const seconds = (Math.abs(skew) / 1000).toFixed(1);
  throw new DatabaseError(
    `This host's clock is ${seconds} s ${skew > 0 ? 'behind' : 'ahead of'} the database server's: refusing to start a run.`,
    [
      `Runs on several hosts share leases in wall-clock time; their clocks must agree within ${(tolerance / 1000).toFixed(1)} s (a fraction of NEWSLETTER_LEASE).`,
      'Synchronise the clock of this host (and of the database server) with NTP, e.g. chrony or systemd-timesyncd.',
    ],
  );
}

export async function renewLease(pg: PgDb, runId: number, now: Millis, leaseMs: number): Promise<boolean> {
  // A run that another run has ended (its lease had expired) cannot bring itself back: the
  // `ended_at IS NULL` condition is what makes a lost lease final. The row lock orders this
  // against expireRuns: whichever commits first wins, the other sees its result.
  const result = await pg.one('UPDATE runs SET lease_until = $1 WHERE id = $2 AND ended_at IS NULL', [
    now + leaseMs,
    runId,
  ]);
  return result.rowCount === 1;
}

export async function liveRuns(pg: PgDb): Promise<RunInfo[]> {
  return (await pg.rows<RunRow>('SELECT * FROM runs WHERE ended_at IS NULL ORDER BY id')).map(toRun);
}

export async function listRuns(pg: PgDb, limit: number): Promise<RunInfo[]> {
  return (await pg.rows<RunRow>('SELECT * FROM runs ORDER BY id DESC LIMIT $1', [limit])).map(toRun);
}

export function expireRuns(pg: PgDb, now: Millis, deadRunIds: number[]): Promise<ExpiredRuns> {
  return pg.tx(async (sql) => {
    // FOR UPDATE first, then the ledger: a run that is claiming or recording right now holds its
    // own row FOR SHARE (claim.ts, recordOutcomes), so it is skipped here rather than waited
    // for; it is alive, and the next run looks again. A run whose lease was renewed while we
    // waited no longer matches. Every run processes its rows in this order (run row, then
    // its deliveries), so two hosts expiring at once cannot deadlock.
    const expired = (
      await sql.query<{ id: number }>(
        `SELECT id FROM runs WHERE ended_at IS NULL AND (lease_until < $1 OR id = ANY($2::bigint[]))
         ORDER BY id FOR UPDATE SKIP LOCKED`,
        [now, deadRunIds],
      )
    ).rows.map((row) => row.id);
    if (expired.length === 0) return { runs: 0, unknown: 0, ...(await heal(sql, now)) };
    // Claimed rows of a run that is gone: the message may or may not have been handed over.
    // `unknown` is never resent on its own (promise 1); an operator settles it (reconcile).
    const lost = (
      await sql.query<{ run_id: number; n: number }>(
        `WITH gone AS (
           UPDATE deliveries SET state = 'unknown', updated_at = $1, reason = $3
           WHERE run_id = ANY($2::bigint[]) AND state = 'claimed'
           RETURNING run_id)
         SELECT run_id, count(*) AS n FROM gone GROUP BY run_id`,
        [now, expired, LEDGER_REASON.runGone],
      )
    ).rows;
    const unknownOf = new Map(lost.map((row) => [row.run_id, row.n]));
    await sql.query(
      `UPDATE runs SET ended_at = $1, outcome = 'lost', unknown = runs.unknown + x.n,
         error = 'lease expired or process gone; its claims became unknown'
       FROM unnest($2::bigint[], $3::integer[]) AS x(id, n) WHERE runs.id = x.id`,
      [now, expired, expired.map((id) => unknownOf.get(id) ?? 0)],
    );
    return {
      runs: expired.length,
      unknown: lost.reduce((sum, row) => sum + row.n, 0),
      ...(await heal(sql, now)),
    };
  });
}

/**
 * What older versions could leave behind, settled at a run's start as the current code would
 * have: `claimed` rows of a run that is closed become `unknown`; `retry` rows of a cancelled
 * newsletter become `skipped`. Stranded rows first, then retries, the order reconcile also takes.
 */
async function heal(sql: Sql, now: Millis): Promise<{ stranded: number; cancelledRetries: number }> {
  const stranded = await sql.query(
    `UPDATE deliveries SET state = 'unknown', updated_at = $1, reason = $2
     WHERE ${strandedClaim('deliveries')}`,
    [now, LEDGER_REASON.stranded],
  );
  const cancelled = await sql.query(
    `UPDATE deliveries SET state = 'skipped', reason = $1, next_attempt_at = NULL, updated_at = $2
     WHERE state = 'retry' AND newsletter_id IN (SELECT id FROM newsletters WHERE status = 'cancelled')`,
    [LEDGER_REASON.cancelled, now],
  );
  return { stranded: stranded.rowCount, cancelledRetries: cancelled.rowCount };
}

export function endRun(pg: PgDb, runId: number, end: RunEnd, now: Millis): Promise<RunSettlement> {
  return pg.tx(async (sql) => {
    // The run's own row FOR UPDATE first, as expireRuns takes it: of an expiry on another host
    // and this end, one waits for the other and then sees its result.
    const [run] = (
      await sql.query<{ ended_at: number | null }>('SELECT ended_at FROM runs WHERE id = $1 FOR UPDATE', [
        runId,
      ])
    ).rows;
    const settlement: RunSettlement = { settled: false, recorded: emptyTally(), unknown: 0, released: 0 };
    if (run && run.ended_at === null) {
      settlement.settled = true;
      settlement.recorded = (await recordOutcomesIn(sql, runId, end.outcomes, now)).recorded;
      settlement.unknown = (
        await sql.query(
          `UPDATE deliveries SET state = 'unknown', reason = $1, updated_at = $2
           WHERE run_id = $3 AND state = 'claimed' AND id = ANY($4::bigint[])`,
          [LEDGER_REASON.endedBeforeRecording, now, runId, end.handedOver],
        )
      ).rowCount;
      settlement.released = await releaseIn(sql, runId, null, now);
    }
    const totals = runTotals(end.counts, settlement.recorded, settlement.unknown);
    // `unknown` adds: an expiry that ended the run first has counted its own.
    await sql.query(
      `UPDATE runs SET ended_at = coalesce(ended_at, $1),
         outcome = CASE WHEN ended_at IS NULL THEN $2 ELSE outcome END,
         sent = $3, failed = $4, retry = $5, unknown = unknown + $6, skipped = $7, error = coalesce(error, $8)
       WHERE id = $9`,
      [
        now,
        end.outcome,
        totals.sent,
        totals.failed,
        totals.retry,
        totals.unknown,
        totals.skipped,
        end.error,
        runId,
      ],
    );
    return settlement;
  });
}
