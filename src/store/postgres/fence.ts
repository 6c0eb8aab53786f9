/**
 * The fenced outcome write on PostgreSQL: recordOutcomes, releaseClaims, and endRun's use of both
 * (lease.ts). (Its twin for one host: ../sqlite/fence.ts. The contract: SendStore.)
 *
 * The invariant. A row changes only while it is still `claimed` by the very run that writes it:
 * every UPDATE carries `run_id = this run AND state = 'claimed'`. A run whose lease expired finds
 * its rows `unknown` (or claimed again by a run on another host) and changes nothing; the write is
 * counted as refused, never an error. So a run that was paused past its lease can neither
 * overwrite a row another run took over (promise 1) nor turn an `unknown` that waits for an
 * operator into anything else (promise 2).
 *
 * The locks, always in the same order as a claim and an expiry take them, so that no two of them
 * wait for each other the other way round:
 *
 * 1. The run's own row FOR SHARE (recordOutcomes, releaseClaims; endRun holds it FOR UPDATE):
 *    expireRuns skips a run that is recording (SKIP LOCKED) instead of ending it halfway.
 * 2. The newsletters of the rows FOR SHARE: a cancel (FOR UPDATE) either commits before, and a
 *    `retry` is then written `skipped`, or waits until these writes are in, and then sees them.
 * 3. The delivery rows, by the UPDATE itself: a row that another transaction changed meanwhile is
 *    re-read by READ COMMITTED before the fence's condition is checked again, so the condition is
 *    always checked against the row as it is now.
 *
 * Why not the obvious alternative: asking first whether this run still holds its lease, then
 * writing by row id alone, leaves a window between the question and the write in which a run on
 * another host can expire this one and take the rows over. The condition inside the UPDATE has no
 * window. And one statement for the whole batch (unnest), not one per row: a round trip per row
 * cost more than the writes.
 */
import { LEDGER_REASON } from '../../domain/ledger-reasons.js';
import { emptyTally, fencedResult, type OutcomeWrite, outcomeReason } from '../../domain/ledger.js';
import type { Millis } from '../../domain/types.js';
import type { RecordedOutcomes } from '../../engine/store.js';
import { IS_CANCELLED } from '../conditions.js';
import { answers, prepared, type Sql } from './connection.js';
import type { PgDb } from './db.js';

export async function recordOutcomes(
  pg: PgDb,
  runId: number,
  writes: OutcomeWrite[],
  now: Millis,
): Promise<RecordedOutcomes> {
  if (writes.length === 0) return { applied: 0, refused: 0, recorded: emptyTally() };
  const write = outcomeStatement(runId, writes, now);
  // One write to the server, one round trip: BEGIN (connection.ts), the run's row, the batch's
  // newsletters, the fenced UPDATE and COMMIT. None needs another's answer; the server runs them
  // in this order, so the locks are taken in the same order as before.
  return pg.tx(async (sql) => {
    // The run's row FOR SHARE first, as claims do: expireRuns skips a run that is recording, so
    // the two never take the same delivery rows in different orders.
    const [, , written] = await answers([
      sql.query(LOCK_RUN, [runId]),
      sql.query(LOCK_NEWSLETTERS_OF_BATCH, [write.ids]),
      sql.queryAndCommit<WrittenRow>(write.text, write.values),
    ]);
    return writtenOutcomes(writes, written.rows);
  });
}

export async function releaseClaims(
  pg: PgDb,
  runId: number,
  deliveryIds: number[],
  now: Millis,
): Promise<number> {
  if (deliveryIds.length === 0) return 0;
  return pg.tx(async (sql) => {
    await sql.query('SELECT 1 FROM runs WHERE id = $1 FOR SHARE', [runId]);
    return releaseIn(sql, runId, deliveryIds, now);
  });
}

/**
 * The newsletters of a batch's rows, FOR SHARE ($1: the rows' ids); see recordOutcomesIn.
 * OFFSET 0 keeps the batch's rows a subquery of their own, found by primary key. Without it the
 * planner joined them to `newsletters` and read the whole newsletter's ledger through
 * deliveries_by_state on every write (19,760 index entries at 20,000 recipients: 0.58 ms against
 * 0.10, EXPLAIN ANALYZE on the bench cluster; a send of n recipients cost O(n²)).
 */
export const LOCK_NEWSLETTERS_OF_BATCH = prepared(`SELECT 1 FROM newsletters
  WHERE id IN (SELECT newsletter_id FROM (SELECT newsletter_id FROM deliveries WHERE id = ANY($1::bigint[]) OFFSET 0) AS batch)
  ORDER BY id FOR SHARE`);

const LOCK_RUN = prepared('SELECT 1 FROM runs WHERE id = $1 FOR SHARE');

/**
 * The fenced outcome writes, in the caller's transaction (which holds the run's row). The
 * newsletters of the rows are held FOR SHARE first: a cancel (FOR UPDATE) either commits before,
 * and a `retry` is then written `skipped`, or waits until these writes are in, and then sees them.
 */
export async function recordOutcomesIn(
  sql: Sql,
  runId: number,
  writes: OutcomeWrite[],
  now: Millis,
): Promise<RecordedOutcomes> {
  if (writes.length === 0) return { applied: 0, refused: 0, recorded: emptyTally() };
  const write = outcomeStatement(runId, writes, now);
  const [, written] = await answers([
    sql.query(LOCK_NEWSLETTERS_OF_BATCH, [write.ids]),
    sql.query<WrittenRow>(write.text, write.values),
  ]);
  return writtenOutcomes(writes, written.rows);
}

/** A row the fenced UPDATE changed, as it is now (`skipped` when its newsletter was cancelled). */
interface WrittenRow {
  id: number;
  state: string;
}

/**
 * The whole outcome write as ONE statement, to run after LOCK_NEWSLETTERS_OF_BATCH in the same
 * transaction:
 *
 * - The fence: a row changes only while it is still `claimed` by this very run. A run whose
 *   lease expired finds its rows `unknown` (or re-claimed by another run) and changes nothing.
 *   One statement for the whole batch: a round trip per row cost more than the writes.
 * - A 4xx of a newsletter cancelled meanwhile would wait for a claim that never comes: it is
 *   written `skipped`, "cancelled", at once (the CASEs). Its newsletter is held FOR SHARE, so the
 *   cancel cannot commit between the lock and this statement.
 * - The addresses to suppress (5.1.x), only for rows the fence let through (the CTE reads the
 *   UPDATE's RETURNING).
 *
 * These were three statements, each waiting for the one before; one statement lets the record
 * go out in one write with its BEGIN and COMMIT (issue 17, session 6).
 */
function outcomeStatement(
  runId: number,
  writes: OutcomeWrite[],
  now: Millis,
): { ids: number[]; text: string; values: unknown[] } {
  const ids = writes.map((write) => write.deliveryId);
  const suppress = writes.filter((write) => write.suppressAddress);
  const cancelledRetry = `(w.state = 'retry' AND ${IS_CANCELLED})`;
  const update = `UPDATE deliveries
        SET state = CASE WHEN ${cancelledRetry} THEN 'skipped' ELSE w.state END,
            attempts = w.attempts,
            next_attempt_at = CASE WHEN ${cancelledRetry} THEN NULL ELSE w.next_attempt_at END,
            smtp_reply = w.smtp_reply, queue_id = w.queue_id,
            reason = CASE WHEN ${cancelledRetry} THEN $10 ELSE w.reason END,
            updated_at = $2
       FROM unnest($3::bigint[], $4::text[], $5::integer[], $6::bigint[], $7::text[], $8::text[], $9::text[])
            AS w(id, state, attempts, next_attempt_at, smtp_reply, queue_id, reason)
      WHERE deliveries.id = w.id AND deliveries.run_id = $1 AND deliveries.state = 'claimed'
      RETURNING deliveries.id, deliveries.state`;
  const values: unknown[] = [
    runId,
    now,
    ids,
    writes.map((write) => write.state),
    writes.map((write) => write.attempts),
    writes.map((write) => write.nextAttemptAt),
    writes.map((write) => write.smtpReply),
    writes.map((write) => write.queueId),
    writes.map(outcomeReason),
    LEDGER_REASON.cancelled,
  ];
  if (suppress.length === 0) return { ids, text: prepared(update), values };
  values.push(
    suppress.map((write) => write.deliveryId),
    suppress.map((write) => write.suppressAddress?.address),
    suppress.map((write) => write.suppressAddress?.reason),
  );
  const text = `WITH written AS (${update}),
       suppressed AS (
         INSERT INTO suppressions (address, reason, source, created_at)
         SELECT a.address, a.reason, 'smtp', $2 FROM unnest($11::bigint[], $12::text[], $13::text[]) AS a(id, address, reason)
         WHERE a.id IN (SELECT id FROM written)
         ON CONFLICT (address) DO NOTHING)
    SELECT id, state FROM written`;
  return { ids, text: prepared(text), values };
}

/** The result of outcomeStatement: which writes the fence let through, and which were cancelled. */
function writtenOutcomes(writes: OutcomeWrite[], written: WrittenRow[]): RecordedOutcomes {
  const appliedIds = new Set(written.map((row) => Number(row.id)));
  const applied = writes.filter((write) => appliedIds.has(write.deliveryId));
  const cancelled = written.filter((row) => row.state === 'skipped').length;
  return fencedResult(writes, applied, cancelled);
}

/**
 * Rows the run holds and never handed over (all of them when `deliveryIds` is null): back to
 * `retry`, due now, attempts unchanged; `skipped`, "cancelled", for a cancelled newsletter.
 * In the caller's transaction; fenced like the outcomes.
 */
export async function releaseIn(
  sql: Sql,
  runId: number,
  deliveryIds: number[] | null,
  now: Millis,
): Promise<number> {
  const result = await sql.query(
    `UPDATE deliveries SET
       state = CASE WHEN ${IS_CANCELLED} THEN 'skipped' ELSE 'retry' END,
       reason = CASE WHEN ${IS_CANCELLED} THEN $1 ELSE reason END,
       next_attempt_at = CASE WHEN ${IS_CANCELLED} THEN NULL ELSE $2::bigint END,
       updated_at = $2::bigint
     WHERE run_id = $3 AND state = 'claimed' AND ($4::bigint[] IS NULL OR id = ANY($4::bigint[]))`,
    [LEDGER_REASON.cancelled, now, runId, deliveryIds],
  );
  return result.rowCount;
}
