/**
 * Newsletters on SQLite: created, read, scheduled, cancelled, and their ledger rows listed. A
 * status change reads and writes under the write lock (BEGIN IMMEDIATE), so it cannot be overtaken
 * by a run between its check and its write.
 */
import { LEDGER_REASON } from '../../domain/ledger-reasons.js';
import { SCHEDULABLE } from '../../domain/newsletter-life.js';
import { noSuchList, noSuchNewsletter } from '../../domain/not-found.js';
import { segmentToColumn } from '../../domain/segment.js';
import type { Delivery, DeliveryState, Millis, Newsletter, NewsletterStatus } from '../../domain/types.js';
import { type DeliveryRow, type NewsletterRow, toDelivery } from '../rows.js';
import type { NewNewsletter, Transition } from '../store.js';
import type { SqliteDb } from './db.js';
import { storeTemplateAndZone } from './newsletter-life.js';
import { NEWSLETTER_SELECT, rows } from './selects.js';

export function createNewsletter(c: SqliteDb, input: NewNewsletter, now: Millis): Newsletter {
  const id = c.immediate(() => {
    const listIds = input.lists.map((name) => {
      const row = c.sql('SELECT id FROM lists WHERE name = ?').get(name) as { id: number } | undefined;
      if (!row) throw noSuchList(name);
      return row.id;
    });
    const result = c
      .sql(
        `INSERT INTO newsletters (subject, template_path, from_address, status, scheduled_at, created_at, updated_at)
           VALUES (@subject, @templatePath, @from, @status, @scheduledAt, @now, @now)`,
      )
      .run({
        subject: input.subject,
        templatePath: input.templatePath,
        from: input.from,
        status: input.scheduledAt === null ? 'draft' : 'scheduled',
        scheduledAt: input.scheduledAt,
        now,
      });
    const newsletterId = Number(result.lastInsertRowid);
    const segment = segmentToColumn(input.segment ?? null);
    if (segment !== null) c.sql('UPDATE newsletters SET segment = ? WHERE id = ?').run(segment, newsletterId);
    storeTemplateAndZone(c, newsletterId, input);
    const link = c.sql('INSERT INTO newsletter_lists (newsletter_id, list_id) VALUES (?, ?)');
    for (const listId of listIds) link.run(newsletterId, listId);
    return newsletterId;
  });
  return getNewsletter(c, id) as Newsletter;
}

export function getNewsletter(c: SqliteDb, id: number): Newsletter | null {
  const row = c.sql(`${NEWSLETTER_SELECT} WHERE n.id = ?`).get(id) as NewsletterRow | undefined;
  return row ? rows.toNewsletter(row) : null;
}

export function listNewsletters(c: SqliteDb): Newsletter[] {
  return (c.sql(`${NEWSLETTER_SELECT} ORDER BY n.id`).all() as NewsletterRow[]).map(rows.toNewsletter);
}

export function scheduleNewsletter(
  c: SqliteDb,
  id: number,
  at: Millis,
  now: Millis,
  zone: string | null = null,
): Transition {
  // A failed newsletter scheduled again (after `edit --template`) loses its failure: `status`
  // stops warning about it, and the run that sends it builds and checks it again.
  return transition(c, id, SCHEDULABLE, () =>
    c
      .sql(
        `UPDATE newsletters SET status = 'scheduled', scheduled_at = ?, scheduled_zone = ?, failure_reason = NULL,
           finished_at = NULL, updated_at = ? WHERE id = ?`,
      )
      .run(at, zone, now, id),
  );
}

export function cancelNewsletter(c: SqliteDb, id: number, now: Millis): Transition {
  return transition(c, id, ['draft', 'scheduled', 'sending'], () => {
    c.sql("UPDATE newsletters SET status = 'cancelled', updated_at = ?, finished_at = ? WHERE id = ?").run(
      now,
      now,
      id,
    );
    // Rows waiting for a retry will never be claimed now: record why. Rows a live run holds
    // (`claimed`) are left for that run, which writes them final (recordOutcomes, endRun: a
    // 4xx or a row never handed over becomes `skipped`, "cancelled"); recipients never claimed
    // stay unclaimed.
    c.sql(
      "UPDATE deliveries SET state = 'skipped', reason = ?, next_attempt_at = NULL, updated_at = ? WHERE newsletter_id = ? AND state = 'retry'",
    ).run(LEDGER_REASON.cancelled, now, id);
  });
}

/** A status change checked and made in one IMMEDIATE transaction. */
export function transition(
  c: SqliteDb,
  id: number,
  from: readonly NewsletterStatus[],
  apply: () => void,
): Transition {
  return c.immediate((): Transition => {
    const row = c.sql('SELECT status FROM newsletters WHERE id = ?').get(id) as
      | { status: NewsletterStatus }
      | undefined;
    if (!row) throw noSuchNewsletter(id);
    if (!from.includes(row.status)) return { ok: false, status: row.status };
    apply();
    return { ok: true };
  });
}

export function deliveries(
  c: SqliteDb,
  newsletterId: number,
  filter: { state?: DeliveryState; limit: number },
): Delivery[] {
  const found = filter.state
    ? c
        .sql('SELECT * FROM deliveries WHERE newsletter_id = ? AND state = ? ORDER BY id LIMIT ?')
        .all(newsletterId, filter.state, filter.limit)
    : c
        .sql('SELECT * FROM deliveries WHERE newsletter_id = ? ORDER BY id LIMIT ?')
        .all(newsletterId, filter.limit);
  return (found as DeliveryRow[]).map(toDelivery);
}
