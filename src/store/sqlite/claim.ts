/**
 * The claim on SQLite, where one database file serves one host and every writer queues for one
 * lock. (Its twin for several hosts: ../postgres/claim.ts. The contract: SendStore.claimBatch.)
 *
 * The invariant. A recipient is claimed at most once per newsletter, however many processes claim
 * at once (promise 1); and whoever is not sent is written `skipped`, with the reason, in the same
 * transaction, so that the counts always add up to the audience (promise 2). A claim of a run that
 * was already ended, or of a newsletter no longer `sending`, takes nothing.
 *
 * The lock. The whole claim is one BEGIN IMMEDIATE transaction: it takes the database's single
 * write lock before its first read, so no other process can claim, record or expire between this
 * claim reading "who is left" and inserting their rows. A second claimer waits for the lock (the
 * busy timeout), then reads what the first committed. The UNIQUE (newsletter_id, address) key
 * would reject a second claim anyway; the lock means it is never hit. The commit is on disk before
 * the engine hands any of it over: a claim that a power cut could take back would let the next run
 * send again what this one sent. In a fast `send-due` the claim runs on the ledger's own thread
 * (ledger-thread.ts), whose connection commits at synchronous=FULL; on the store's own connection
 * it commits at NORMAL and is then fsynced off the event loop (wal-sync.ts: the same fsync FULL
 * would do). Either way that fsync also carries every outcome written since the last claim
 * (fence.ts).
 *
 * The order: due `retry` rows first (the earliest due first), then subscribers of the audience
 * with no ledger row yet, in subscriber-id order after `afterSubscriberId` (a hint within one run:
 * the NOT EXISTS on the ledger is the truth). A newsletter's segment (src/domain/segment.ts) is
 * part of "the audience": its condition (../segment-sql.ts) narrows the candidates, so someone
 * outside it never gets a row, and every count (audience.ts) applies the same condition. Rows go one statement each, prepared once per
 * connection: inside the lock a row costs microseconds.
 *
 * Why not the obvious alternatives:
 * - A deferred BEGIN (the default) takes the write lock only at the first INSERT. Two claimers
 *   would both read the same candidates; the second then finds its snapshot stale at its first
 *   write and fails (SQLITE_BUSY_SNAPSHOT, which no busy timeout waits out) instead of waiting.
 * - A cursor per newsletter ("claimed up to subscriber N") moves when a batch is fetched, not when
 *   it is sent: a crash between the two skips people, and nothing shows it. One ledger row per
 *   recipient, always.
 * - PostgreSQL's shape (row locks with SKIP LOCKED, one INSERT of the whole batch) buys claimers
 *   that run side by side; SQLite has one writer at a time, so it would only add statements.
 */
import { audienceClosed } from '../../domain/audience.js';
import { skipReason } from '../../domain/ledger-reasons.js';
import { messageIdOf } from '../../domain/message-id.js';
import type { ClaimedDelivery } from '../../domain/types.js';
import type { ClaimRequest, ClaimResult } from '../../engine/store.js';
import { segmentFromColumn } from '../../domain/segment.js';
import { inAudience } from '../conditions.js';
import type { CandidateRow, RetryRow } from '../rows.js';
import { nothingClaimed, SELECT_CANDIDATES, SELECT_RETRIES } from '../rows.js';
import { andInSegment, sqliteBinder } from '../segment-sql.js';
import type { SqliteDb } from './db.js';
import { rows } from './selects.js';
import { type WalSync, withoutFsync } from './wal-sync.js';

/**
 * A LIMIT that SQLite reads when the statement runs, not when it is prepared. SQLite (3.53, as
 * better-sqlite3 builds it) compiles a bare `LIMIT ?` as the constant bound at the time, and so
 * expires the statement whenever that parameter is bound again: every claim re-prepared both of
 * its queries (about 17 and 35 µs a claim), the largest cost on the ledger's thread that was not
 * the database's own work (issue 17, bench/NOTES.md "Issue 17 (session 7)"). Behind a CAST the
 * value is still the LIMIT, the plan is the same (EXPLAIN QUERY PLAN), and the statement prepared
 * once is reused.
 */
const LIMIT_PARAMETER = 'CAST(? AS INTEGER)';

export async function claimBatch(
  c: SqliteDb,
  request: ClaimRequest,
  wal: WalSync | null,
): Promise<ClaimResult> {
  if (!wal) return c.immediate(() => claimNow(c, request));
  // Committed at NORMAL, then fsynced off the event loop before anyone may send it (wal-sync.ts).
  const claim = withoutFsync(c, () => c.immediate(() => claimNow(c, request)));
  await wal.sync();
  return claim;
}

export function claimNow(c: SqliteDb, request: ClaimRequest): ClaimResult {
  const { newsletterId: nl, runId, now } = request;
  const newsletter = c.sql('SELECT status, finished_at, segment FROM newsletters WHERE id = ?').get(nl) as
    | { status: string; finished_at: number | null; segment: string | null }
    | undefined;
  if (newsletter?.status !== 'sending') return nothingClaimed(request, false);
  // A run that was ended (lease expired, or found dead) claims nothing: expireRuns only looks at
  // live runs, so rows it claimed now would stay `claimed` for ever if it then died.
  if (!c.sql('SELECT 1 FROM runs WHERE id = ? AND ended_at IS NULL').get(runId))
    return nothingClaimed(request, true);

  const claimed: ClaimedDelivery[] = [];
  let skipped = 0;

  const dueRetries = c
    .sql(
      `${SELECT_RETRIES}
       WHERE d.newsletter_id = ? AND d.state = 'retry' AND d.next_attempt_at <= ?
       ORDER BY d.next_attempt_at, d.id LIMIT ${LIMIT_PARAMETER}`,
    )
    .all(nl, now, request.limit) as RetryRow[];
  for (const row of dueRetries) {
    const reason = skipReason(row);
    if (reason) {
      c.sql("UPDATE deliveries SET state = 'skipped', reason = ?, updated_at = ? WHERE id = ?").run(
        reason,
        now,
        row.id,
      );
      skipped += 1;
      continue;
    }
    c.sql(
      "UPDATE deliveries SET state = 'claimed', run_id = ?, claimed_at = ?, updated_at = ? WHERE id = ?",
    ).run(runId, now, now, row.id);
    claimed.push(rows.toClaimed(nl, row, row.id, row.message_id, row.attempts));
  }

  let lastSubscriberId = request.afterSubscriberId;
  const room = request.limit - dueRetries.length;
  // finished_at set on a `sending` newsletter: reopened by reconcile --resend, its audience is closed.
  if (room > 0 && !audienceClosed({ status: newsletter.status, finishedAt: newsletter.finished_at })) {
    // Only the newsletter's segment is its audience: someone outside it gets no row at all.
    const params: Record<string, unknown> = { nl, after: request.afterSubscriberId, room };
    const segment = andInSegment('sqlite', segmentFromColumn(newsletter.segment), 's', sqliteBinder(params));
    const fresh = c
      .sql(
        `${SELECT_CANDIDATES}
         WHERE s.id > :after AND ${inAudience(':nl')}${segment}
           AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.newsletter_id = :nl AND d.address = s.address)
         ORDER BY s.id LIMIT ${LIMIT_PARAMETER.replace('?', ':room')}`,
      )
      .all(params) as CandidateRow[];
    const insert = c.sql(
      `INSERT INTO deliveries (newsletter_id, subscriber_id, address, state, run_id, message_id, reason, claimed_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    for (const row of fresh) {
      lastSubscriberId = Math.max(lastSubscriberId, row.subscriber_id ?? 0);
      const messageId = messageIdOf(request.messageIds, nl, row.address);
      const reason = skipReason(row);
      const state = reason ? 'skipped' : 'claimed';
      const result = insert.run(
        nl,
        row.subscriber_id,
        row.address,
        state,
        runId,
        messageId,
        reason,
        now,
        now,
      );
      if (reason) skipped += 1;
      else claimed.push(rows.toClaimed(nl, row, Number(result.lastInsertRowid), messageId, 0));
    }
  }
  return { claimed, skipped, lastSubscriberId, stillSending: true };
}
