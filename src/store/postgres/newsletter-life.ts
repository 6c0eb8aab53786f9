/**
 * A newsletter's life on PostgreSQL past create, schedule and cancel (issue 14; the rules:
 * src/domain/newsletter-life.ts): the stored template and send-time zone written with a new
 * newsletter, `edit`, and `delete`.
 *
 * `edit` goes through `transition`, which holds the newsletter's row FOR UPDATE: claims in flight
 * hold it FOR SHARE (claim.ts), and beginSending's compare-and-set waits for it. An edit also
 * moves `updated_at` forward (by at least 1 ms): beginSending compares it, so a run that built the
 * content before the edit cannot start sending it. `delete` takes the same row lock before it
 * counts the rows that may have reached someone, so no claim lands between the count and the delete.
 */
import {
  DELETABLE,
  type DeleteOutcome,
  EDITABLE,
  reachedInKeptCounts,
} from '../../domain/newsletter-life.js';
import { noSuchList, noSuchNewsletter } from '../../domain/not-found.js';
import { segmentToColumn } from '../../domain/segment.js';
import { compiledCopyColumn, storedTemplateColumn } from '../../domain/stored-template.js';
import type { DeliveryCounts, Millis, NewsletterStatus } from '../../domain/types.js';
import type { NewNewsletter, NewsletterPatch, Transition } from '../store.js';
import type { Sql } from './connection.js';
import type { PgDb } from './db.js';
import { transition } from './newsletters.js';

/** Inside createNewsletter's transaction: what was read and checked is what is kept. */
export async function storeTemplateAndZone(sql: Sql, id: number, input: NewNewsletter): Promise<void> {
  if (!input.template && !input.scheduledZone) return;
  await sql.query(
    `UPDATE newsletters SET template_source = $1, template_stored_at = $2, scheduled_zone = $3,
       template_compiled = $4 WHERE id = $5`,
    [
      input.template ? storedTemplateColumn(input.template) : null,
      input.template?.storedAt ?? null,
      input.scheduledZone ?? null,
      input.template ? compiledCopyColumn(input.template) : null,
      id,
    ],
  );
}

export function editNewsletter(
  pg: PgDb,
  id: number,
  patch: NewsletterPatch,
  now: Millis,
): Promise<Transition> {
  return transition(pg, id, EDITABLE, async (sql) => {
    await sql.query(
      `UPDATE newsletters SET subject = coalesce($1, subject), from_address = coalesce($2, from_address),
         template_path = coalesce($3, template_path), template_source = coalesce($4, template_source),
         template_stored_at = coalesce($5::bigint, template_stored_at),
         template_compiled = CASE WHEN $4::text IS NULL THEN template_compiled ELSE $8 END,
         updated_at = greatest($6::bigint, updated_at + 1)
       WHERE id = $7`,
      [
        patch.subject ?? null,
        patch.from ?? null,
        patch.template?.path ?? null,
        patch.template ? storedTemplateColumn(patch.template.source) : null,
        patch.template?.source.storedAt ?? null,
        now,
        id,
        // A new template's own compiled copy, or none: never the old template's.
        patch.template ? compiledCopyColumn(patch.template.source) : null,
      ],
    );
    if (patch.lists) {
      const listIds: number[] = [];
      for (const name of patch.lists) {
        const [row] = (await sql.query<{ id: number }>('SELECT id FROM lists WHERE name = $1', [name])).rows;
        if (!row) throw noSuchList(name);
        listIds.push(row.id);
      }
      await sql.query('DELETE FROM newsletter_lists WHERE newsletter_id = $1', [id]);
      await sql.query(
        `INSERT INTO newsletter_lists (newsletter_id, list_id)
         SELECT $1, list_id FROM unnest($2::bigint[]) AS list_id ON CONFLICT DO NOTHING`,
        [id, listIds],
      );
    }
    // An editable newsletter has no ledger rows yet, so its counts follow the new segment at once.
    if (patch.segment !== undefined)
      await sql.query('UPDATE newsletters SET segment = $1::jsonb WHERE id = $2', [
        segmentToColumn(patch.segment),
        id,
      ]);
  });
}

export function deleteNewsletter(pg: PgDb, id: number): Promise<DeleteOutcome> {
  return pg.tx(async (sql): Promise<DeleteOutcome> => {
    const [row] = (
      await sql.query<{ status: NewsletterStatus; pruned_counts: Partial<DeliveryCounts> | null }>(
        'SELECT status, pruned_counts FROM newsletters WHERE id = $1 FOR UPDATE',
        [id],
      )
    ).rows;
    if (!row) throw noSuchNewsletter(id);
    const [counted] = (
      await sql.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM deliveries WHERE newsletter_id = $1 AND state IN ('sent', 'unknown', 'claimed')",
        [id],
      )
    ).rows;
    const mayHaveReached = (counted?.n ?? 0) + reachedInKeptCounts(row.pruned_counts);
    if (!DELETABLE.includes(row.status) || mayHaveReached > 0)
      return { deleted: false, status: row.status, mayHaveReached };
    const deleted = await sql.query('DELETE FROM deliveries WHERE newsletter_id = $1', [id]);
    await sql.query('DELETE FROM newsletter_lists WHERE newsletter_id = $1', [id]);
    await sql.query('DELETE FROM newsletters WHERE id = $1', [id]);
    return { deleted: true, ledgerRows: deleted.rowCount };
  });
}
