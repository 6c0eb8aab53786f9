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
 * Time. Every lease time is the database server's clock (lease-clock.ts: `clock_timestamp()`,
 * shifted only by how far the caller's `now` is from this process's clock, which is how the
 * contract suite moves time): `lease_until` is set and renewed from it, and expiry compares with
 * it. Hosts whose clocks disagree therefore agree on every lease: a host minutes ahead cannot end
 * a live run, a host minutes behind cannot keep a lease that has passed. The engine's local view
 * of its own lease (LeaseKeeper) is a countdown of `leaseMs` from the moment it asked, on its
 * monotonic clock: the database started the same lease no earlier, and both clocks tick at the
 * same rate, so the local view never outlives the database's. `registerRun` still measures this
 * host's clock against the server's, and reports a skew beyond `clockTolerance` as a warning: a
 * run still reads send times, retry times and quota hours from its own clock.
 *
 * Why not the obvious alternative: comparing each caller's own `now` (as SQLite, one host, does)
 * is only as safe as the hosts' clocks are close, and a host with a stepped clock would end live
 * runs or keep dead ones; refusing such a host at registration (what this store did before) still
 * trusts the clock not to move during the run.
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
import type { Sql } from './connection.js';
import type { PgDb } from './db.js';
import { recordOutcomesIn, releaseIn } from './fence.js';
import { dbNow, shiftOf } from './lease-clock.js';

/**
 * How far this host's clock may be from the database's before a run warns. Leases no longer
 * depend on it (they are on the database's clock); it is the old refusal threshold, half of the
 * engine's hand-over margin `min(5 s, lease/4)`, kept as the point where a skew is worth fixing.
 */
export function clockTolerance(leaseMs: number): number {
  return Math.floor(Math.min(5000, leaseMs / 4) / 2);
}

export function registerRun(pg: PgDb, registration: RunRegistration): Promise<RegisteredRun> {
  const { hostId, hostname, pid, pidScope, now, leaseMs } = registration;
  return pg.tx(async (sql) => {
    const skew = await measureSkew(sql, leaseMs);
    // started_at is the caller's time (what `runs` shows beside the host's other times); the
    // lease is the database's (the comment at the top).
    const [row] = (
      await sql.query<RunRow>(
        `INSERT INTO runs (host_id, hostname, pid, pid_scope, started_at, lease_until)
         VALUES ($1, $2, $3, $4, $5, ${dbNow('$6')} + $7) RETURNING *`,
        [hostId, hostname, pid, pidScope ?? null, now, shiftOf(now), leaseMs],
      )
    ).rows;
    const run: RegisteredRun = toRun(row!);
    if (skew !== null) run.clockSkewMs = skew;
    return run;
  });
}

/**
 * How far this host's wall clock is from the database server's (positive: this host is behind),
 * when that is beyond `clockTolerance`; null otherwise. Measured with this host's real clock,
 * never with the `now` the caller passes (tests move that on purpose).
 */
async function measureSkew(sql: Sql, leaseMs: number): Promise<number | null> {
  const before = Date.now();
  const [row] = (
    await sql.query<{ ms: number }>('SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms')
  ).rows;
  const after = Date.now();
  const skew = row!.ms - (before + after) / 2;
  if (Math.abs(skew) - (after - before) / 2 <= clockTolerance(leaseMs)) return null;
  return Math.round(skew);
}

export async function renewLease(pg: PgDb, runId: number, now: Millis, leaseMs: number): Promise<boolean> {
  // A run that another run has ended (its lease had expired) cannot bring itself back: the
  // `ended_at IS NULL` condition is what makes a lost lease final. The row lock orders this
  // against expireRuns: whichever commits first wins, the other sees its result.
  const result = await pg.one(
    `UPDATE runs SET lease_until = ${dbNow('$1')} + $2 WHERE id = $3 AND ended_at IS NULL`,
    [shiftOf(now), leaseMs, runId],
  );
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
        `SELECT id FROM runs WHERE ended_at IS NULL AND (lease_until < ${dbNow('$1')} OR id = ANY($2::bigint[]))
         ORDER BY id FOR UPDATE SKIP LOCKED`,
        [shiftOf(now), deadRunIds],
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
