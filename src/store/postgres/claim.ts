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
import type { Sql } from './connection.js';
import type { PgDb } from './db.js';
import { rows } from './selects.js';

export function claimBatch(pg: PgDb, request: ClaimRequest): Promise<ClaimResult> {
  return pg.tx((sql) => claimIn(sql, request));
}

async function claimIn(sql: Sql, request: ClaimRequest): Promise<ClaimResult> {
  const { newsletterId: nl, runId, now } = request;

  const [newsletter] = (
    await sql.query<{ status: string; finished_at: string | null; segment: unknown }>(
      'SELECT status, finished_at, segment FROM newsletters WHERE id = $1 FOR SHARE',
      [nl],
    )
  ).rows;
  if (newsletter?.status !== 'sending') return nothingClaimed(request, false);
  // A run that was ended (lease expired, or found dead) claims nothing: expireRuns only looks at
  // live runs, so rows it claimed now would stay `claimed` for ever if it then died.
  const live = await sql.query('SELECT 1 FROM runs WHERE id = $1 AND ended_at IS NULL FOR SHARE', [runId]);
  if (live.rowCount === 0) return nothingClaimed(request, true);

  const claimed: ClaimedDelivery[] = [];
  let skipped = 0;

  // Retries that are due go first, as in SQLite.
  const dueRetries = (
    await sql.query<RetryRow>(
      `${SELECT_RETRIES}
       WHERE d.newsletter_id = $1 AND d.state = 'retry' AND d.next_attempt_at <= $2
       ORDER BY d.next_attempt_at, d.id
       LIMIT $3
       FOR UPDATE OF d SKIP LOCKED`,
      [nl, now, request.limit],
    )
  ).rows;
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
  if (retrySkips.length > 0) {
    await sql.query(
      `UPDATE deliveries SET state = 'skipped', reason = x.reason, updated_at = $1
       FROM unnest($2::bigint[], $3::text[]) AS x(id, reason) WHERE deliveries.id = x.id`,
      [now, retrySkips.map((s) => s.id), retrySkips.map((s) => s.reason)],
    );
    skipped += retrySkips.length;
  }
  if (retryClaims.length > 0) {
    await sql.query(
      `UPDATE deliveries SET state = 'claimed', run_id = $1, claimed_at = $2, updated_at = $2
       WHERE id = ANY($3::bigint[])`,
      [runId, now, retryClaims],
    );
  }

  let lastSubscriberId = request.afterSubscriberId;
  const room = request.limit - dueRetries.length;
  // A batch whose every candidate was taken by a claim that committed after our snapshot comes
  // back empty; a new statement sees those rows, so try again rather than report "none left".
  // finished_at set on a `sending` newsletter: reopened by reconcile --resend, its audience is closed.
  const closed = audienceClosed({ status: newsletter.status, finishedAt: newsletter.finished_at });
  const segment = segmentFromColumn(newsletter.segment);
  for (let attempt = 0; room > 0 && !closed && attempt < 3; attempt++) {
    const fresh = await claimFresh(sql, request, lastSubscriberId, room, segment);
    lastSubscriberId = fresh.lastSubscriberId;
    claimed.push(...fresh.claimed);
    skipped += fresh.skipped;
    if (fresh.candidates === 0 || fresh.claimed.length + fresh.skipped > 0) break;
  }
  return { claimed, skipped, lastSubscriberId, stillSending: true };
}

async function claimFresh(
  sql: Sql,
  request: ClaimRequest,
  afterSubscriberId: number,
  room: number,
  segment: Segment | null,
): Promise<{ claimed: ClaimedDelivery[]; skipped: number; lastSubscriberId: number; candidates: number }> {
  const { newsletterId: nl, runId, now } = request;
  // Only the newsletter's segment is its audience: someone outside it gets no row at all.
  const params: unknown[] = [nl, afterSubscriberId, room];
  const inSegment = andInSegment('postgres', segment, 's', pgBinder(params));
  const fresh = (
    await sql.query<CandidateRow>(
      `${SELECT_CANDIDATES}
       WHERE s.id > $2 AND ${inAudience('$1', '$2')}${inSegment}
         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.newsletter_id = $1 AND d.address = s.address)
       ORDER BY s.id
       LIMIT $3
       FOR NO KEY UPDATE OF s SKIP LOCKED`,
      params,
    )
  ).rows;
  let lastSubscriberId = afterSubscriberId;
  const claimed: ClaimedDelivery[] = [];
  let skipped = 0;
  if (fresh.length === 0) return { claimed, skipped, lastSubscriberId, candidates: 0 };
  const planned = fresh.map((row) => {
    lastSubscriberId = Math.max(lastSubscriberId, row.subscriber_id ?? 0);
    return {
      row,
      messageId: messageIdOf(request.messageIds, request.newsletterId, row.address),
      reason: skipReason(row),
    };
  });
  const inserted = (
    await sql.query<{ id: number; address: string }>(
      `INSERT INTO deliveries (newsletter_id, subscriber_id, address, state, run_id, message_id, reason, claimed_at, updated_at)
       SELECT $1, c.subscriber_id, c.address, c.state, $2, c.message_id, c.reason, $3, $3
       FROM unnest($4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[])
            WITH ORDINALITY AS c(subscriber_id, address, state, message_id, reason, ord)
       ORDER BY c.ord
       ON CONFLICT (newsletter_id, address) DO NOTHING
       RETURNING id, address`,
      [
        nl,
        runId,
        now,
        planned.map((p) => p.row.subscriber_id),
        planned.map((p) => p.row.address),
        planned.map((p) => (p.reason ? 'skipped' : 'claimed')),
        planned.map((p) => p.messageId),
        planned.map((p) => p.reason),
      ],
    )
  ).rows;
  const idOf = new Map(inserted.map((row) => [row.address, row.id]));
  for (const { row, messageId, reason } of planned) {
    const id = idOf.get(row.address);
    if (id === undefined) continue; // claimed by another host since this statement's snapshot
    if (reason) skipped += 1;
    else claimed.push(rows.toClaimed(nl, row, id, messageId, 0));
  }
  return { claimed, skipped, lastSubscriberId, candidates: fresh.length };
}
