/**
 * Newsletters on PostgreSQL: created, read, scheduled, cancelled, and their ledger rows listed.
 * A status change holds the newsletter's row FOR UPDATE, which claims in flight hold FOR SHARE
 * (claim.ts), so a cancel is never overtaken by a claim that read `sending` before it.
 */
import { LEDGER_REASON } from '../../domain/ledger-reasons.js';
import { SCHEDULABLE } from '../../domain/newsletter-life.js';
import { noSuchList, noSuchNewsletter } from '../../domain/not-found.js';
import { segmentToColumn } from '../../domain/segment.js';
import type { Delivery, DeliveryState, Millis, Newsletter, NewsletterStatus } from '../../domain/types.js';
import { type DeliveryRow, type NewsletterRow, toDelivery } from '../rows.js';
import type { NewNewsletter, Transition } from '../store.js';
import type { Sql } from './connection.js';
import type { PgDb } from './db.js';
import { storeTemplateAndZone } from './newsletter-life.js';
import { NEWSLETTER_SELECT, rows } from './selects.js';

export async function createNewsletter(pg: PgDb, input: NewNewsletter, now: Millis): Promise<Newsletter> {
  const id = await pg.tx(async (sql) => {
    const listIds: number[] = [];
    for (const name of input.lists) {
      const [row] = (await sql.query<{ id: number }>('SELECT id FROM lists WHERE name = $1', [name])).rows;
      if (!row) throw noSuchList(name);
      listIds.push(row.id);
    }
    const [created] = (
      await sql.query<{ id: number }>(
        `INSERT INTO newsletters (subject, template_path, from_address, status, scheduled_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id`,
        [
          input.subject,
          input.templatePath,
          input.from,
          input.scheduledAt === null ? 'draft' : 'scheduled',
          input.scheduledAt,
          now,
        ],
      )
    ).rows;
    const newsletterId = created!.id;
    const segment = segmentToColumn(input.segment ?? null);
    if (segment !== null)
      await sql.query('UPDATE newsletters SET segment = $1::jsonb WHERE id = $2', [segment, newsletterId]);
    await storeTemplateAndZone(sql, newsletterId, input);
    await sql.query(
      `INSERT INTO newsletter_lists (newsletter_id, list_id)
       SELECT $1, list_id FROM unnest($2::bigint[]) AS list_id ON CONFLICT DO NOTHING`,
      [newsletterId, listIds],
    );
    return newsletterId;
  });
  return (await getNewsletter(pg, id)) as Newsletter;
}

export async function getNewsletter(pg: PgDb, id: number): Promise<Newsletter | null> {
  const [row] = await pg.rows<NewsletterRow>(`${NEWSLETTER_SELECT} WHERE n.id = $1`, [id]);
  return row ? rows.toNewsletter(row) : null;
}

export async function listNewsletters(pg: PgDb): Promise<Newsletter[]> {
  return (await pg.rows<NewsletterRow>(`${NEWSLETTER_SELECT} ORDER BY n.id`)).map(rows.toNewsletter);
}

export function scheduleNewsletter(
  pg: PgDb,
  id: number,
  at: Millis,
  now: Millis,
  zone: string | null = null,
): Promise<Transition> {
  // A failed newsletter scheduled again (after `edit --template`) loses its failure: `status`
  // stops warning about it, and the run that sends it builds and checks it again.
  return transition(pg, id, SCHEDULABLE, async (sql) => {
    await sql.query(
      `UPDATE newsletters SET status = 'scheduled', scheduled_at = $1, scheduled_zone = $2, failure_reason = NULL,
         finished_at = NULL, updated_at = $3 WHERE id = $4`,
      [at, zone, now, id],
    );
  });
}

export function cancelNewsletter(pg: PgDb, id: number, now: Millis): Promise<Transition> {
  return transition(pg, id, ['draft', 'scheduled', 'sending'], async (sql) => {
    await sql.query(
      "UPDATE newsletters SET status = 'cancelled', updated_at = $1, finished_at = $1 WHERE id = $2",
      [now, id],
    );
    // Rows waiting for a retry will never be claimed now: record why. Rows a live run holds
    // (`claimed`) are left for that run, which writes them final (recordOutcomes, endRun: a
    // 4xx or a row never handed over becomes `skipped`, "cancelled"); recipients never claimed
    // stay unclaimed. Runs recording outcomes hold this row FOR SHARE, so none of their `retry`
    // writes can slip in after this statement.
    await sql.query(
      `UPDATE deliveries SET state = 'skipped', reason = $3, next_attempt_at = NULL, updated_at = $1
       WHERE newsletter_id = $2 AND state = 'retry'`,
      [now, id, LEDGER_REASON.cancelled],
    );
  });
}

/**
 * A status change checked and made in one transaction. FOR UPDATE waits for claims in flight
 * (they hold the newsletter FOR SHARE), so a cancel is never overtaken by a claim that read
 * `sending` before it.
 */
export function transition(
  pg: PgDb,
  id: number,
  from: readonly NewsletterStatus[],
  apply: (sql: Sql) => Promise<void>,
): Promise<Transition> {
  return pg.tx(async (sql): Promise<Transition> => {
    const [row] = (
      await sql.query<{ status: NewsletterStatus }>(
        'SELECT status FROM newsletters WHERE id = $1 FOR UPDATE',
        [id],
      )
    ).rows;
    if (!row) throw noSuchNewsletter(id);
    if (!from.includes(row.status)) return { ok: false, status: row.status };
    await apply(sql);
    return { ok: true };
  });
}

export async function deliveries(
  pg: PgDb,
  newsletterId: number,
  filter: { state?: DeliveryState; limit: number },
): Promise<Delivery[]> {
  const found = filter.state
    ? await pg.rows<DeliveryRow>(
        'SELECT * FROM deliveries WHERE newsletter_id = $1 AND state = $2 ORDER BY id LIMIT $3',
        [newsletterId, filter.state, filter.limit],
      )
    : await pg.rows<DeliveryRow>('SELECT * FROM deliveries WHERE newsletter_id = $1 ORDER BY id LIMIT $2', [
        newsletterId,
        filter.limit,
      ]);
  return found.map(toDelivery);
}
