/**
 * Subscribers and lists on SQLite: adding, importing, unsubscribing, listing. Every
 * read-then-write runs in BEGIN IMMEDIATE (db.ts).
 */
import { REMOVED_OPT_OUT } from '../../domain/ledger-reasons.js';
import type { Millis, Subscriber } from '../../domain/types.js';
import { notOptedOut, reachable } from '../conditions.js';
import { importThroughStaging } from '../staged-import.js';
import type { ImportSummary, ImportTarget, ListSummary, SubscriberInput } from '../store.js';
import type { SqliteDb } from './db.js';
import { SQLITE_STAGE_BATCH, SqliteStagingArea } from './import-staging.js';
import { rows, SUBSCRIBER_SELECT } from './selects.js';
import type { SubscriberRow } from '../rows.js';

export function importSubscribers(
  c: SqliteDb,
  input: AsyncIterable<SubscriberInput>,
  options: ImportTarget,
): Promise<ImportSummary> {
  // Staged in a TEMP table (no lock on the database while the CSV streams in), then published
  // in one short transaction: src/store/staged-import.ts, ./import-staging.ts.
  const area = new SqliteStagingArea(c.db, options);
  return importThroughStaging(input, area, SQLITE_STAGE_BATCH, options.at, options.dryRun === true);
}

export function addSubscriber(
  c: SqliteDb,
  input: SubscriberInput,
  lists: string[],
  now: Millis,
): { created: boolean } {
  return c.immediate(() => {
    const { created, id } = upsertSubscriber(c, input, now);
    const addField = c.sql('INSERT OR IGNORE INTO field_names (name) VALUES (?)');
    for (const name of Object.keys(input.fields)) addField.run(name);
    for (const list of lists) addMembership(c, ensureList(c, list, now), id, now);
    return { created };
  });
}

export function removeSubscriber(c: SqliteDb, address: string, now: Millis): boolean {
  return c.immediate(() => {
    // An opt-out outlives the row: the suppression is what a re-import meets (issue 13). A
    // suppressed address already has one, and keeps its first reason.
    c.sql(
      `INSERT OR IGNORE INTO suppressions (address, reason, source, created_at)
       SELECT address, ?, ?, ? FROM subscribers WHERE address = ? AND status = 'unsubscribed'`,
    ).run(REMOVED_OPT_OUT.reason, REMOVED_OPT_OUT.source, now, address);
    return c.sql('DELETE FROM subscribers WHERE address = ?').run(address).changes === 1;
  });
}

export function unsubscribe(c: SqliteDb, address: string, now: Millis): boolean {
  const result = c
    .sql(
      "UPDATE subscribers SET status = 'unsubscribed', unsubscribed_at = ?, updated_at = ? WHERE address = ? AND status = 'active'",
    )
    .run(now, now, address);
  return result.changes === 1;
}

export function unsubscribeById(
  c: SqliteDb,
  subscriberId: number,
  now: Millis,
): { address: string; changed: boolean } | null {
  const row = c.sql('SELECT address FROM subscribers WHERE id = ?').get(subscriberId) as
    | { address: string }
    | undefined;
  return row ? { address: row.address, changed: unsubscribe(c, row.address, now) } : null;
}

export function getSubscriber(c: SqliteDb, address: string): Subscriber | null {
  const row = c.sql(`${SUBSCRIBER_SELECT} WHERE s.address = ?`).get(address) as SubscriberRow | undefined;
  return row ? rows.toSubscriber(row) : null;
}

export function listSubscribers(
  c: SqliteDb,
  filter: { list?: string | undefined; afterId: number; limit: number },
): Subscriber[] {
  const found = filter.list
    ? c
        .sql(
          `${SUBSCRIBER_SELECT} WHERE s.id > ? AND s.id IN (SELECT m.subscriber_id FROM memberships m
               JOIN lists l ON l.id = m.list_id WHERE l.name = ?) ORDER BY s.id LIMIT ?`,
        )
        .all(filter.afterId, filter.list, filter.limit)
    : c.sql(`${SUBSCRIBER_SELECT} WHERE s.id > ? ORDER BY s.id LIMIT ?`).all(filter.afterId, filter.limit);
  return (found as SubscriberRow[]).map(rows.toSubscriber);
}

export function lists(c: SqliteDb): ListSummary[] {
  return c
    .sql(
      `SELECT l.name, (SELECT count(*) FROM memberships m WHERE m.list_id = l.id) AS members,
              (SELECT count(*) FROM memberships m JOIN subscribers s ON s.id = m.subscriber_id
                WHERE m.list_id = l.id AND ${reachable('s')} AND ${notOptedOut('l.name', 's.address')}) AS reachable
         FROM lists l ORDER BY l.name`,
    )
    .all() as ListSummary[];
}

function ensureList(c: SqliteDb, name: string, now: Millis): number {
  c.sql('INSERT OR IGNORE INTO lists (name, created_at) VALUES (?, ?)').run(name, now);
  return (c.sql('SELECT id FROM lists WHERE name = ?').get(name) as { id: number }).id;
}

function addMembership(c: SqliteDb, listId: number, subscriberId: number, now: Millis): boolean {
  const insert = c.sql(
    'INSERT OR IGNORE INTO memberships (list_id, subscriber_id, created_at) VALUES (?, ?, ?)',
  );
  return insert.run(listId, subscriberId, now).changes === 1;
}

/** Insert or update by normalised address. An import never re-subscribes someone who left. */
function upsertSubscriber(
  c: SqliteDb,
  input: SubscriberInput,
  now: Millis,
): { created: boolean; id: number } {
  const existing = c.sql('SELECT id, fields FROM subscribers WHERE address = ?').get(input.address) as
    | { id: number; fields: string }
    | undefined;
  if (existing) {
    const fields = { ...(JSON.parse(existing.fields) as Record<string, string>), ...input.fields };
    c.sql('UPDATE subscribers SET email = ?, name = ?, fields = ?, updated_at = ? WHERE id = ?').run(
      input.email,
      input.name,
      JSON.stringify(fields),
      now,
      existing.id,
    );
    return { created: false, id: existing.id };
  }
  const result = c
    .sql(
      'INSERT INTO subscribers (email, address, name, fields, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)',
    )
    .run(input.email, input.address, input.name, JSON.stringify(input.fields), now, now);
  return { created: true, id: Number(result.lastInsertRowid) };
}
