/**
 * The claim on PostgreSQL, where runs on several hosts claim from one newsletter at the same time.
 * (Its twin for one host: ../sqlite/claim.ts. The contract: SendStore.claimBatch.)
 *
 * The invariant. A recipient is claimed at most once per newsletter, whatever runs race on
 * whatever hosts (promise 1); whoever is not sent is written `skipped`, with the reason, in the
 * same transaction (promise 2). A run that was already ended, or a newsletter no longer
 * `sending`, claims nothing.
 *
 * The locks. SQLite serialises claims with its single write lock. Here every claim runs
 * concurrently, in READ COMMITTED, and is shaped so that claimers neither wait for each other nor
 * collide:
 *
 * 1. The newsletter row FOR SHARE: claimers share it, but a cancel or a completion (which update
 *    it) waits until the claims in flight commit, and claims after it see the new status.
 * 2. The run's own row FOR SHARE, alive (`ended_at IS NULL`): expireRuns takes that row FOR UPDATE
 *    SKIP LOCKED before turning the run's claims into `unknown`, so a run cannot be ended halfway
 *    through a claim and leave rows `claimed` by a dead run for ever.
 * 3. Due retries FOR UPDATE SKIP LOCKED: each retry row goes to one claimer; the others skip it.
 * 4. New recipients (the audience, narrowed by the newsletter's segment, ../segment-sql.ts:
 *    someone outside it never gets a row, and audience.ts counts the same way): their subscriber
 *    rows FOR NO KEY UPDATE SKIP LOCKED, so concurrent claimers get disjoint candidates without
 *    waiting, then one INSERT … ON CONFLICT DO NOTHING RETURNING.
 *    The UNIQUE (newsletter_id, address) key is what keeps promise 1; the row locks only make
 *    collisions rare. A candidate whose row was claimed by a run that committed after this
 *    statement's snapshot is dropped by ON CONFLICT, and the batch is just smaller.
 *
 * Why not the obvious alternative: INSERT … SELECT … ON CONFLICT without the locks is also
 * safe, but two hosts would pick the same first N candidates, the second would wait on the
 * first's uncommitted rows and then insert nothing, and an empty claim tells the engine that
 * nothing is left. (FOR NO KEY UPDATE rather than FOR UPDATE: memberships' foreign keys take
 * KEY SHARE, which it does not block.)
 */
import { audienceClosed } from '../../domain/audience.js';
import { skipReason } from '../../domain/ledger-reasons.js';
import { messageIdOf } from '../../domain/message-id.js';
import type { ClaimedDelivery } from '../../domain/types.js';
import type { ClaimRequest, ClaimResult } from '../../engine/store.js';
import { type Segment, segmentFromColumn } from '../../domain/segment.js';
import { inAudience } from '../conditions.js';
import type { CandidateRow, RetryRow } from '../rows.js';
import { nothingClaimed, SELECT_CANDIDATES, SELECT_RETRIES } from '../rows.js';
import { andInSegment, pgBinder } from '../segment-sql.js';
import { answers, ledgerGrew, prepared, type Sql, type TxSql } from './connection.js';
import type { Pool } from 'pg';
import type { PgDb } from './db.js';
import { rows } from './selects.js';

/**
 * The round trips (issue 17, session 6: on one host a batch was bound by them, not by the work in
 * them). Statements that do not need each other's answer are pipelined (connection.ts):
 *
 * 1. BEGIN, the newsletter, the run and the due retries, in one write.
 * 2. The retries' updates and the new candidates (which need the newsletter's segment and the
 *    room the retries left), in one write.
 * 3. The INSERT of the new rows and COMMIT, in one write (the Message-IDs are computed here, from
 *    the candidates' addresses, so the INSERT waits for the candidates).
 *
 * A batch whose every candidate was taken by a claim that committed after our snapshot comes back
 * empty, and an empty claim tells the engine that nothing is left; a new transaction sees those
 * rows, so it tries again (the transaction that collided changed nothing), from past them.
 */

/**
 * Each collided attempt means other hosts committed claims meanwhile, so the tries end: with rows,
 * or with nobody left. The cap only bounds a pathological chase. It was 3: with three hosts sending
 * fast, claiming up to 200 at a time, one host in three collided three times in a row after about
 * 1,400 messages, took the empty claim for "nothing left" and ended its run, leaving the rest of a
 * 20,000-recipient newsletter to the other two (bench/NOTES.md, issue 17, session 8).
 */
const MAX_COLLIDED_ATTEMPTS = 20;
export async function claimBatch(pg: PgDb, request: ClaimRequest): Promise<ClaimResult> {
  let afterSubscriberId = request.afterSubscriberId;
  for (let attempt = 1; ; attempt++) {
    const { result, collided } = await pg.tx((sql) =>
      claimIn(
        sql,
        pg.pool,
        { ...request, afterSubscriberId },
        pg.prepares && pg.serverVersion >= PLAN_CACHE_MODE_SINCE,
      ),
    );
    if (!collided || attempt >= MAX_COLLIDED_ATTEMPTS) return result;
    afterSubscriberId = result.lastSubscriberId;
  }
}

/** The retries are read only for a live run of a `sending` newsletter: nothing is locked otherwise. */
const CLAIMING = `EXISTS (SELECT 1 FROM newsletters n WHERE n.id = $1 AND n.status = 'sending')
   AND EXISTS (SELECT 1 FROM runs r WHERE r.id = $4 AND r.ended_at IS NULL)`;

const LOCK_NEWSLETTER = prepared(
  'SELECT status, finished_at, segment FROM newsletters WHERE id = $1 FOR SHARE',
);
const LOCK_LIVE_RUN = prepared('SELECT 1 FROM runs WHERE id = $1 AND ended_at IS NULL FOR SHARE');
const DUE_RETRIES = prepared(`${SELECT_RETRIES}
  WHERE d.newsletter_id = $1 AND d.state = 'retry' AND d.next_attempt_at <= $2 AND ${CLAIMING}
  ORDER BY d.next_attempt_at, d.id
  LIMIT $3
  FOR UPDATE OF d SKIP LOCKED`);
const INSERT_CLAIMS =
  prepared(`INSERT INTO deliveries (newsletter_id, subscriber_id, address, state, run_id, message_id, reason, claimed_at, updated_at)
  SELECT $1, c.subscriber_id, c.address, c.state, $2, c.message_id, c.reason, $3, $3
  FROM unnest($4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[])
       WITH ORDINALITY AS c(subscriber_id, address, state, message_id, reason, ord)
  ORDER BY c.ord
  ON CONFLICT (newsletter_id, address) DO NOTHING
  RETURNING id, address`);

/**
 * Planning the candidate query cost three times running it (about 1.2 against 0.4 ms), and
 * PostgreSQL planned it anew on every call even when prepared: its generic plan's estimate is for
 * more rows than a batch, so the custom plan always looked cheaper. The generic plan is the same
 * plan (test/integration/postgres-plans.test.ts checks that it reads the memberships from the
 * hint on, as the custom one does), so the claim asks for it: planned once per connection and
 * ledger generation (connection.ts, ledgerGrew: a plan made on an empty ledger would scan it). SET
 * LOCAL ends with the transaction; a statement that is not prepared is planned as before.
 */
const GENERIC_PLAN = 'SET LOCAL plan_cache_mode = force_generic_plan';
/**
 * plan_cache_mode is PostgreSQL 12's; 10 and 11 (still supported here) plan as they always did,
 * and so does a pool whose statements are not prepared (each would be planned per call anyway).
 */
const PLAN_CACHE_MODE_SINCE = 120000;

async function claimIn(
  sql: TxSql,
  pool: Pool,
  request: ClaimRequest,
  genericPlan: boolean,
): Promise<{ result: ClaimResult; collided: boolean }> {
  const { newsletterId: nl, runId, now } = request;

  const [newsletterRows, live, retryRows] = await answers([
    sql.query<{ status: string; finished_at: string | null; segment: unknown }>(LOCK_NEWSLETTER, [nl]),
    sql.query(LOCK_LIVE_RUN, [runId]),
    // Retries that are due go first, as in SQLite.
    sql.query<RetryRow>(DUE_RETRIES, [nl, now, request.limit, runId]),
  ]);
  const [newsletter] = newsletterRows.rows;
  if (newsletter?.status !== 'sending') return { result: nothingClaimed(request, false), collided: false };
  // A run that was ended (lease expired, or found dead) claims nothing: expireRuns only looks at
  // live runs, so rows it claimed now would stay `claimed` for ever if it then died.
  if (live.rowCount === 0) return { result: nothingClaimed(request, true), collided: false };

  const claimed: ClaimedDelivery[] = [];
  let skipped = 0;
  const dueRetries = retryRows.rows;
  const retryClaims: number[] = [];
  const retrySkips: { id: number; reason: string }[] = [];
  for (const row of dueRetries) {
    const reason = skipReason(row);
    if (reason) {
      retrySkips.push({ id: row.id, reason });
      continue;
    }
    retryClaims.push(row.id);
    claimed.push(rows.toClaimed(nl, row, row.id, row.message_id, row.attempts));
  }
  const pending: Promise<unknown>[] = [];
  if (retrySkips.length > 0) {
    pending.push(
      sql.query(
        `UPDATE deliveries SET state = 'skipped', reason = x.reason, updated_at = $1
         FROM unnest($2::bigint[], $3::text[]) AS x(id, reason) WHERE deliveries.id = x.id`,
        [now, retrySkips.map((s) => s.id), retrySkips.map((s) => s.reason)],
      ),
    );
    skipped += retrySkips.length;
  }
  if (retryClaims.length > 0) {
    pending.push(
      sql.query(
        `UPDATE deliveries SET state = 'claimed', run_id = $1, claimed_at = $2, updated_at = $2
         WHERE id = ANY($3::bigint[])`,
        [runId, now, retryClaims],
      ),
    );
  }

  const room = request.limit - dueRetries.length;
  // finished_at set on a `sending` newsletter: reopened by reconcile --resend, its audience is closed.
  const closed = audienceClosed({ status: newsletter.status, finishedAt: newsletter.finished_at });
  if (room > 0 && !closed && genericPlan) pending.push(sql.query(GENERIC_PLAN));
  const candidates =
    room > 0 && !closed
      ? readCandidates(sql, request, room, segmentFromColumn(newsletter.segment))
      : Promise.resolve([]);
  // In the order sent, so that the first failure is the one reported (those after it only say
  // that the transaction is aborted).
  const answered = await answers([...pending, candidates]);
  const fresh = answered[answered.length - 1] as CandidateRow[];
  if (fresh.length === 0) {
    return {
      result: { claimed, skipped, lastSubscriberId: request.afterSubscriberId, stillSending: true },
      collided: false,
    };
  }
  const inserted = await insertFresh(sql, request, fresh);
  // The ledger grew: its statements are planned anew as it doubles (connection.ts).
  ledgerGrew(pool, inserted.claimed.length + inserted.skipped);
  claimed.push(...inserted.claimed);
  skipped += inserted.skipped;
  const collided = claimed.length === 0 && skipped === 0;
  return {
    result: { claimed, skipped, lastSubscriberId: inserted.lastSubscriberId, stillSending: true },
    collided,
  };
}

/** New candidates past the hint, locked SKIP LOCKED (see the header). */
function readCandidates(
  sql: Sql,
  request: ClaimRequest,
  room: number,
  segment: Segment | null,
): Promise<CandidateRow[]> {
  const { text, params } = candidatesStatement(
    request.newsletterId,
    request.afterSubscriberId,
    room,
    segment,
  );
  return sql.query<CandidateRow>(text, params).then((result) => result.rows);
}

/** The candidate query and its parameters (exported for test/integration/postgres-plans.test.ts). */
export function candidatesStatement(
  newsletterId: number,
  afterSubscriberId: number,
  room: number,
  segment: Segment | null,
): { text: string; params: unknown[] } {
  // Only the newsletter's segment is its audience: someone outside it gets no row at all.
  const params: unknown[] = [newsletterId, afterSubscriberId, room];
  const inSegment = andInSegment('postgres', segment, 's', pgBinder(params));
  const text = prepared(`${SELECT_CANDIDATES}
       WHERE s.id > $2 AND ${inAudience('$1', '$2')}${inSegment}
         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.newsletter_id = $1 AND d.address = s.address)
       ORDER BY s.id
       LIMIT $3
       FOR NO KEY UPDATE OF s SKIP LOCKED`);
  return { text, params };
}

/** The candidates' ledger rows, and COMMIT behind them: the last statement of the claim. */
async function insertFresh(
  sql: TxSql,
  request: ClaimRequest,
  fresh: CandidateRow[],
): Promise<{ claimed: ClaimedDelivery[]; skipped: number; lastSubscriberId: number }> {
  const { newsletterId: nl, runId, now } = request;
  let lastSubscriberId = request.afterSubscriberId;
  const claimed: ClaimedDelivery[] = [];
  let skipped = 0;
  const planned = fresh.map((row) => {
    lastSubscriberId = Math.max(lastSubscriberId, row.subscriber_id ?? 0);
    return {
      row,
      messageId: messageIdOf(request.messageIds, request.newsletterId, row.address),
      reason: skipReason(row),
    };
  });
  const inserted = (
    await sql.queryAndCommit<{ id: number; address: string }>(INSERT_CLAIMS, [
      nl,
      runId,
      now,
      planned.map((p) => p.row.subscriber_id),
      planned.map((p) => p.row.address),
      planned.map((p) => (p.reason ? 'skipped' : 'claimed')),
      planned.map((p) => p.messageId),
      planned.map((p) => p.reason),
    ])
  ).rows;
  const idOf = new Map(inserted.map((row) => [row.address, row.id]));
  for (const { row, messageId, reason } of planned) {
    const id = idOf.get(row.address);
    if (id === undefined) continue; // claimed by another host since this statement's snapshot
    if (reason) skipped += 1;
    else claimed.push(rows.toClaimed(nl, row, id, messageId, 0));
  }
  return { claimed, skipped, lastSubscriberId };
}
