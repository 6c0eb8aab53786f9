/**
 * Beginning and completing a newsletter on SQLite: what is due, the compare-and-set that starts
 * sending (with the verified body, promise 3), the one that records a build failure, and the
 * completion read from the ledger.
 */
import type { Millis, Newsletter, VerifiedBody } from '../../domain/types.js';
import type { NewsletterAsRead } from '../../engine/store.js';
import type { NewsletterRow } from '../rows.js';
import { pendingCount } from './audience.js';
import type { SqliteDb } from './db.js';
import { IS_DUE, IS_SENDING } from './queries.js';
import { NEWSLETTER_SELECT, rows } from './selects.js';

export function dueNewsletters(c: SqliteDb, now: Millis): Newsletter[] {
  const due = c.sql(`${NEWSLETTER_SELECT} WHERE ${IS_DUE} ORDER BY n.scheduled_at, n.id`).all(now);
  return (due as NewsletterRow[]).map(rows.toNewsletter);
}

export function sendingNewsletters(c: SqliteDb): Newsletter[] {
  const sending = c.sql(`${NEWSLETTER_SELECT} WHERE ${IS_SENDING} ORDER BY n.id`).all();
  return (sending as NewsletterRow[]).map(rows.toNewsletter);
}

export function beginSending(
  c: SqliteDb,
  read: NewsletterAsRead,
  body: VerifiedBody,
  runId: number,
  now: Millis,
): boolean {
  // Compare-and-set: the body and the status change land together or not at all. Exactly one
  // row changes for exactly one run; every other run sees 0 and leaves the newsletter alone. The
  // row must also be what the build read: a `schedule --at LATER` made meanwhile wins.
  const result = c
    .sql(
      `UPDATE newsletters SET status = 'sending', body = ?, started_at = ?, started_by_run = ?, updated_at = ?
         WHERE id = ? AND status = 'scheduled' AND scheduled_at IS ? AND updated_at = ?`,
    )
    .run(JSON.stringify(body), now, runId, now, read.id, read.scheduledAt, read.updatedAt);
  return result.changes === 1;
}

export function markBuildFailed(c: SqliteDb, read: NewsletterAsRead, reason: string, now: Millis): boolean {
  const result = c
    .sql(
      `UPDATE newsletters SET status = 'failed', failure_reason = ?, finished_at = ?, updated_at = ?
         WHERE id = ? AND status = 'scheduled' AND scheduled_at IS ? AND updated_at = ?`,
    )
    .run(reason, now, now, read.id, read.scheduledAt, read.updatedAt);
  return result.changes === 1;
}

export function completeIfDone(c: SqliteDb, newsletterId: number, now: Millis): boolean {
  return c.immediate(() => {
    // Completion is read from the ledger, never from a counter: nobody left to claim, and no
    // row still claimed or waiting for a retry.
    const open = c
      .sql("SELECT count(*) AS n FROM deliveries WHERE newsletter_id = ? AND state IN ('claimed', 'retry')")
      .get(newsletterId) as { n: number };
    if (open.n > 0 || pendingCount(c, newsletterId) > 0) return false;
    const result = c
      .sql(
        "UPDATE newsletters SET status = 'sent', finished_at = ?, updated_at = ? WHERE id = ? AND status = 'sending'",
      )
      .run(now, now, newsletterId);
    return result.changes === 1;
  });
}
