/**
 * Beginning and completing a newsletter on PostgreSQL: what is due, the compare-and-set that
 * starts sending (with the verified body, promise 3), the one that records a build failure, and
 * the completion read from the ledger. Of two runs on any hosts, the row lock of an UPDATE makes
 * the second wait, re-read the row and find it changed.
 */
import type { Millis, Newsletter, VerifiedBody } from '../../domain/types.js';
import type { NewsletterAsRead } from '../../engine/store.js';
import { segmentFromColumn } from '../../domain/segment.js';
import { audienceClosedSql, inAudience } from '../conditions.js';
import { andInSegment, pgBinder } from '../segment-sql.js';
import type { NewsletterRow } from '../rows.js';
import type { PgDb } from './db.js';
import { NEWSLETTER_SELECT, rows } from './selects.js';

export async function dueNewsletters(pg: PgDb, now: Millis): Promise<Newsletter[]> {
  const due = await pg.rows<NewsletterRow>(
    `${NEWSLETTER_SELECT} WHERE n.status = 'scheduled' AND n.scheduled_at <= $1 ORDER BY n.scheduled_at, n.id`,
    [now],
  );
  return due.map(rows.toNewsletter);
}

export async function sendingNewsletters(pg: PgDb): Promise<Newsletter[]> {
  const sending = await pg.rows<NewsletterRow>(
    `${NEWSLETTER_SELECT} WHERE n.status = 'sending' ORDER BY n.id`,
  );
  return sending.map(rows.toNewsletter);
}

export async function beginSending(
  pg: PgDb,
  read: NewsletterAsRead,
  body: VerifiedBody,
  runId: number,
  now: Millis,
): Promise<boolean> {
  // Compare-and-set: the body and the status change land together or not at all. Of two runs
  // (on any hosts) the second waits for the first's row lock, re-reads the row, finds it no
  // longer `scheduled` and changes nothing. The row must also be what the build read: a
  // `schedule --at LATER` made meanwhile wins.
  const result = await pg.one(
    `UPDATE newsletters SET status = 'sending', body = $1::jsonb, started_at = $2, started_by_run = $3, updated_at = $2
     WHERE id = $4 AND status = 'scheduled' AND scheduled_at IS NOT DISTINCT FROM $5 AND updated_at = $6`,
    [JSON.stringify(body), now, runId, read.id, read.scheduledAt, read.updatedAt],
  );
  return result.rowCount === 1;
}

export async function markBuildFailed(
  pg: PgDb,
  read: NewsletterAsRead,
  reason: string,
  now: Millis,
): Promise<boolean> {
  const result = await pg.one(
    `UPDATE newsletters SET status = 'failed', failure_reason = $1, finished_at = $2, updated_at = $2
     WHERE id = $3 AND status = 'scheduled' AND scheduled_at IS NOT DISTINCT FROM $4 AND updated_at = $5`,
    [reason, now, read.id, read.scheduledAt, read.updatedAt],
  );
  return result.rowCount === 1;
}

export async function completeIfDone(pg: PgDb, newsletterId: number, now: Millis): Promise<boolean> {
  // Completion is read from the ledger, never from a counter: nobody left to claim, and no row
  // still claimed or waiting for a retry. One statement, one snapshot: a claim committed by
  // another host is either visible as `claimed` or its recipients are still pending, never
  // neither. (Two statements could see the pending recipients already claimed, but not the
  // claims.) The segment narrows "nobody left" as it narrows the claim; it is fixed once the
  // newsletter is sending, so reading it first does not split the snapshot that matters.
  const [newsletter] = await pg.rows<{ segment: unknown }>('SELECT segment FROM newsletters WHERE id = $1', [
    newsletterId,
  ]);
  const params: unknown[] = [newsletterId, now];
  const inSegment = andInSegment(
    'postgres',
    segmentFromColumn(newsletter?.segment ?? null),
    's',
    pgBinder(params),
  );
  const result = await pg.one(
    `UPDATE newsletters SET status = 'sent', finished_at = $2, updated_at = $2
     WHERE id = $1 AND status = 'sending'
       AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.newsletter_id = $1 AND d.state IN ('claimed', 'retry'))
       -- finished_at set: reopened by reconcile --resend, its audience is closed (src/domain/audience.ts)
       AND (${audienceClosedSql('newsletters')}
            OR NOT EXISTS (SELECT 1 FROM subscribers s WHERE ${inAudience('$1')}${inSegment}
                             AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.newsletter_id = $1 AND d.address = s.address)))`,
    params,
  );
  return result.rowCount === 1;
}
