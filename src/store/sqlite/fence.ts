/**
 * The fenced outcome write on SQLite: recordOutcomes, releaseClaims, and endRun's use of both
 * (lease.ts). (Its twin for several hosts: ../postgres/fence.ts. The contract: SendStore.)
 *
 * The invariant. A row changes only while it is still `claimed` by the very run that writes it:
 * every UPDATE carries `run_id = this run AND state = 'claimed'`. A run whose lease expired finds
 * its rows `unknown` (or claimed again by another run) and changes nothing; the write is counted
 * as refused, never an error. So a run that was paused past its lease can neither overwrite a row
 * another run took over (promise 1) nor turn an `unknown` that waits for an operator into
 * anything else (promise 2).
 *
 * The lock. Each batch of writes is one BEGIN IMMEDIATE transaction: the fence is checked and the
 * row written by the same statement, under the single write lock, so no expiry can fall between
 * them. A `retry` whose newsletter was cancelled meanwhile is written `skipped`, "cancelled", in
 * the same transaction: with the lock held, no cancel can fall between the two statements either.
 *
 * Durability. These writes commit with synchronous=NORMAL (`withoutFsync`, wal-sync.ts): they only
 * move rows out of `claimed`, and the next claim's fsync carries them. A power cut in between can
 * only take such a write back, leaving its rows `claimed`, which expiry then turns `unknown`: the
 * safe side, and it halves the fsyncs on the send path.
 *
 * Why not the obvious alternative: asking first whether this run still holds its lease, then
 * writing by row id alone, leaves a window between the question and the write in which another
 * run can expire this one and take the rows over. The condition inside the UPDATE has no window.
 */
import { LEDGER_REASON } from '../../domain/ledger-reasons.js';
import { fencedResult, type OutcomeWrite, outcomeReason } from '../../domain/ledger.js';
import type { Millis } from '../../domain/types.js';
import type { RecordedOutcomes } from '../../engine/store.js';
import { IS_CANCELLED } from '../conditions.js';
import type { SqliteDb } from './db.js';
import { withoutFsync } from './wal-sync.js';

export function recordOutcomes(
  c: SqliteDb,
  runId: number,
  writes: OutcomeWrite[],
  now: Millis,
): RecordedOutcomes {
  return withoutFsync(c, () => c.immediate(() => recordOutcomesNow(c, runId, writes, now)));
}

export function releaseClaims(c: SqliteDb, runId: number, deliveryIds: number[], now: Millis): number {
  if (deliveryIds.length === 0) return 0;
  return withoutFsync(c, () => c.immediate(() => releaseNow(c, runId, deliveryIds, now)));
}

/** The fenced writes, inside the caller's IMMEDIATE transaction. */
export function recordOutcomesNow(
  c: SqliteDb,
  runId: number,
  writes: OutcomeWrite[],
  now: Millis,
): RecordedOutcomes {
  // The fence: a row changes only while it is still `claimed` by this very run. A run whose
  // lease expired finds its rows `unknown` (or re-claimed by another run) and changes nothing.
  const update = c.sql(
    `UPDATE deliveries SET state = ?, attempts = ?, next_attempt_at = ?, smtp_reply = ?, queue_id = ?,
       reason = ?, updated_at = ?
     WHERE id = ? AND run_id = ? AND state = 'claimed'`,
  );
  const suppress = c.sql(
    'INSERT OR IGNORE INTO suppressions (address, reason, source, created_at) VALUES (?, ?, ?, ?)',
  );
  const applied: OutcomeWrite[] = [];
  for (const write of writes) {
    const changes = update.run(
      write.state,
      write.attempts,
      write.nextAttemptAt,
      write.smtpReply,
      write.queueId,
      outcomeReason(write),
      now,
      write.deliveryId,
      runId,
    ).changes;
    if (changes === 0) continue;
    applied.push(write);
    if (write.suppressAddress) {
      suppress.run(write.suppressAddress.address, write.suppressAddress.reason, 'smtp', now);
    }
  }
  // A 4xx of a newsletter cancelled meanwhile would wait for a claim that never comes: final now.
  const retried = applied.filter((write) => write.state === 'retry').map((write) => write.deliveryId);
  const cancelled =
    retried.length === 0
      ? 0
      : c
          .sql(
            `UPDATE deliveries SET state = 'skipped', reason = ?, next_attempt_at = NULL, updated_at = ?
               WHERE state = 'retry' AND id IN (SELECT value FROM json_each(?)) AND ${IS_CANCELLED}`,
          )
          .run(LEDGER_REASON.cancelled, now, JSON.stringify(retried)).changes;
  return fencedResult(writes, applied, cancelled);
}

/**
 * Rows this run holds and never handed over (all of them when `deliveryIds` is null): back to
 * `retry`, due now, attempts unchanged; `skipped`, "cancelled", for a cancelled newsletter.
 * Inside the caller's IMMEDIATE transaction; fenced like the outcomes.
 */
export function releaseNow(c: SqliteDb, runId: number, deliveryIds: number[] | null, now: Millis): number {
  return c
    .sql(
      `UPDATE deliveries SET
         state = CASE WHEN ${IS_CANCELLED} THEN 'skipped' ELSE 'retry' END,
         reason = CASE WHEN ${IS_CANCELLED} THEN ? ELSE reason END,
         next_attempt_at = CASE WHEN ${IS_CANCELLED} THEN NULL ELSE ? END,
         updated_at = ?
       WHERE run_id = ? AND state = 'claimed'
         AND (? IS NULL OR id IN (SELECT value FROM json_each(?)))`,
    )
    .run(
      LEDGER_REASON.cancelled,
      now,
      now,
      runId,
      deliveryIds === null ? null : 1,
      JSON.stringify(deliveryIds ?? []),
    ).changes;
}
