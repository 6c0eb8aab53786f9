/**
 * A newsletter's life on SQLite past create, schedule and cancel (issue 14; the rules:
 * src/domain/newsletter-life.ts): the stored template and send-time zone written with a new
 * newsletter, `edit`, and `delete`.
 *
 * Each status check and its write happen in one IMMEDIATE transaction (`transition`), so no run
 * can begin sending between them. An edit also moves `updated_at` forward (by at least 1 ms, even
 * within one millisecond): beginSending compares it, so a run that built the content before the
 * edit cannot start sending it. A delete counts the rows that may have reached someone under the
 * same lock in which it deletes, so no run can claim one in between.
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
import type { SqliteDb } from './db.js';
import { transition } from './newsletters.js';

/** Inside createNewsletter's transaction: what was read and checked is what is kept. */
export function storeTemplateAndZone(c: SqliteDb, id: number, input: NewNewsletter): void {
  if (!input.template && !input.scheduledZone) return;
  c.sql(
    `UPDATE newsletters SET template_source = ?, template_stored_at = ?, scheduled_zone = ?,
       template_compiled = ? WHERE id = ?`,
  ).run(
    input.template ? storedTemplateColumn(input.template) : null,
    input.template?.storedAt ?? null,
    input.scheduledZone ?? null,
    input.template ? compiledCopyColumn(input.template) : null,
    id,
  );
}

export function editNewsletter(c: SqliteDb, id: number, patch: NewsletterPatch, now: Millis): Transition {
  return transition(c, id, EDITABLE, () => {
    c.sql(
      `UPDATE newsletters SET subject = coalesce(@subject, subject), from_address = coalesce(@from, from_address),
         template_path = coalesce(@templatePath, template_path),
         template_source = coalesce(@templateSource, template_source),
         template_stored_at = coalesce(@storedAt, template_stored_at),
         template_compiled = CASE WHEN @templateSource IS NULL THEN template_compiled ELSE @compiled END,
         updated_at = max(@now, updated_at + 1)
       WHERE id = @id`,
    ).run({
      subject: patch.subject ?? null,
      from: patch.from ?? null,
      templatePath: patch.template?.path ?? null,
      templateSource: patch.template ? storedTemplateColumn(patch.template.source) : null,
      storedAt: patch.template?.source.storedAt ?? null,
      // A new template's own compiled copy, or none: never the old template's.
      compiled: patch.template ? compiledCopyColumn(patch.template.source) : null,
      now,
      id,
    });
    if (patch.lists) {
      const listIds = patch.lists.map((name) => {
        const row = c.sql('SELECT id FROM lists WHERE name = ?').get(name) as { id: number } | undefined;
        if (!row) throw noSuchList(name);
        return row.id;
      });
      c.sql('DELETE FROM newsletter_lists WHERE newsletter_id = ?').run(id);
      const link = c.sql('INSERT INTO newsletter_lists (newsletter_id, list_id) VALUES (?, ?)');
      for (const listId of listIds) link.run(id, listId);
    }
    // An editable newsletter has no ledger rows yet, so its counts follow the new segment at once.
    if (patch.segment !== undefined)
      c.sql('UPDATE newsletters SET segment = ? WHERE id = ?').run(segmentToColumn(patch.segment), id);
  });
}

export function deleteNewsletter(c: SqliteDb, id: number): DeleteOutcome {
  return c.immediate((): DeleteOutcome => {
    const row = c.sql('SELECT status, pruned_counts FROM newsletters WHERE id = ?').get(id) as
      | { status: NewsletterStatus; pruned_counts: string | null }
      | undefined;
    if (!row) throw noSuchNewsletter(id);
    const { n } = c
      .sql(
        "SELECT count(*) AS n FROM deliveries WHERE newsletter_id = ? AND state IN ('sent', 'unknown', 'claimed')",
      )
      .get(id) as { n: number };
    const kept =
      row.pruned_counts === null ? null : (JSON.parse(row.pruned_counts) as Partial<DeliveryCounts>);
    const mayHaveReached = n + reachedInKeptCounts(kept);
    if (!DELETABLE.includes(row.status) || mayHaveReached > 0)
      return { deleted: false, status: row.status, mayHaveReached };
    const ledgerRows = c.sql('DELETE FROM deliveries WHERE newsletter_id = ?').run(id).changes;
    c.sql('DELETE FROM newsletter_lists WHERE newsletter_id = ?').run(id);
    c.sql('DELETE FROM newsletters WHERE id = ?').run(id);
    return { deleted: true, ledgerRows };
  });
}
