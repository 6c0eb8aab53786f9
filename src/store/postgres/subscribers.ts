/**
 * Subscribers and lists on PostgreSQL: adding, importing, unsubscribing, listing. Set-based
 * statements (unnest) where SQLite loops: here every statement is a round trip.
 */
import { REMOVED_OPT_OUT } from '../../domain/ledger-reasons.js';
import type { Millis, Subscriber } from '../../domain/types.js';
import type { SubscriberRow } from '../rows.js';
import { notOptedOut, reachable } from '../conditions.js';
import { importThroughStaging } from '../staged-import.js';
import type { ImportSummary, ImportTarget, ListSummary, SubscriberInput } from '../store.js';
import type { Sql } from './connection.js';
import type { PgDb } from './db.js';
import { POSTGRES_STAGE_BATCH, PostgresStagingArea } from './import-staging.js';
import { addFieldNames, ensureList } from './lists-and-fields.js';
import { rows, SUBSCRIBER_SELECT } from './selects.js';

export function importSubscribers(
  pg: PgDb,
  input: AsyncIterable<SubscriberInput>,
  options: ImportTarget,
): Promise<ImportSummary> {
  // Staged in short transactions, then published in one short one: src/store/staged-import.ts,
  // ./import-staging.ts.
  const area = new PostgresStagingArea((fn) => pg.tx(fn), options);
  return importThroughStaging(input, area, POSTGRES_STAGE_BATCH, options.at, options.dryRun === true);
}

export function addSubscriber(
  pg: PgDb,
  input: SubscriberInput,
  lists: string[],
  now: Millis,
): Promise<{ created: boolean }> {
  return pg.tx(async (sql) => {
    const { created, ids } = await upsertSubscribers(sql, [input], now);
    await addFieldNames(sql, Object.keys(input.fields));
    for (const list of lists) await addMemberships(sql, await ensureList(sql, list, now), ids, now);
    return { created: created === 1 };
  });
}

export function removeSubscriber(pg: PgDb, address: string, now: Millis): Promise<boolean> {
  return pg.tx(async (sql) => {
    // An opt-out outlives the row: the suppression is what a re-import meets (issue 13). A
    // suppressed address already has one, and keeps its first reason.
    await sql.query(
      `INSERT INTO suppressions (address, reason, source, created_at)
       SELECT address, $1, $2, $3 FROM subscribers WHERE address = $4 AND status = 'unsubscribed'
       ON CONFLICT (address) DO NOTHING`,
      [REMOVED_OPT_OUT.reason, REMOVED_OPT_OUT.source, now, address],
    );
    return (await sql.query('DELETE FROM subscribers WHERE address = $1', [address])).rowCount === 1;
  });
}

export async function unsubscribe(pg: PgDb, address: string, now: Millis): Promise<boolean> {
  const result = await pg.one(
    `UPDATE subscribers SET status = 'unsubscribed', unsubscribed_at = $1, updated_at = $1
     WHERE address = $2 AND status = 'active'`,
    [now, address],
  );
  return result.rowCount === 1;
}

export async function unsubscribeById(
  pg: PgDb,
  subscriberId: number,
  now: Millis,
): Promise<{ address: string; changed: boolean } | null> {
  const [row] = await pg.rows<{ address: string }>('SELECT address FROM subscribers WHERE id = $1', [
    subscriberId,
  ]);
  return row ? { address: row.address, changed: await unsubscribe(pg, row.address, now) } : null;
}

export async function getSubscriber(pg: PgDb, address: string): Promise<Subscriber | null> {
  const [row] = await pg.rows<SubscriberRow>(`${SUBSCRIBER_SELECT} WHERE s.address = $1`, [address]);
  return row ? rows.toSubscriber(row) : null;
}

export async function listSubscribers(
  pg: PgDb,
  filter: { list?: string | undefined; afterId: number; limit: number },
): Promise<Subscriber[]> {
  const found = filter.list
    ? await pg.rows<SubscriberRow>(
        `${SUBSCRIBER_SELECT} WHERE s.id > $1 AND s.id IN (SELECT m.subscriber_id FROM memberships m
           JOIN lists l ON l.id = m.list_id WHERE l.name = $2) ORDER BY s.id LIMIT $3`,
        [filter.afterId, filter.list, filter.limit],
      )
    : await pg.rows<SubscriberRow>(`${SUBSCRIBER_SELECT} WHERE s.id > $1 ORDER BY s.id LIMIT $2`, [
        filter.afterId,
        filter.limit,
      ]);
  return found.map(rows.toSubscriber);
}

export function lists(pg: PgDb): Promise<ListSummary[]> {
  return pg.rows<ListSummary>(
    `SELECT l.name, (SELECT count(*) FROM memberships m WHERE m.list_id = l.id) AS members,
            (SELECT count(*) FROM memberships m JOIN subscribers s ON s.id = m.subscriber_id
              WHERE m.list_id = l.id AND ${reachable('s')} AND ${notOptedOut('l.name', 's.address')}) AS reachable
     FROM lists l ORDER BY l.name COLLATE "C"`,
  );
}

/**
 * Insert or update by normalised address, in one statement per batch (no address twice in a
 * batch). An import never re-subscribes someone who left: `status` is not touched. New fields
 * are merged over the old ones (`||`), as the SQLite store does. `xmax = 0` is true exactly for
 * the rows this statement inserted (an updated row carries this transaction's id in xmax).
 */
async function upsertSubscribers(
  sql: Sql,
  inputs: SubscriberInput[],
  now: Millis,
): Promise<{ created: number; ids: number[] }> {
  const upserted = (
    await sql.query<{ id: number; created: boolean }>(
      `INSERT INTO subscribers AS s (email, address, name, fields, created_at, updated_at)
       SELECT u.email, u.address, u.name, u.fields::jsonb, $5, $5
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS u(email, address, name, fields, ord)
       ORDER BY u.ord
       ON CONFLICT (address) DO UPDATE
         SET email = excluded.email, name = excluded.name, fields = s.fields || excluded.fields,
             updated_at = excluded.updated_at
       RETURNING s.id, (s.xmax = 0) AS created`,
      [
        inputs.map((i) => i.email),
        inputs.map((i) => i.address),
        inputs.map((i) => i.name),
        inputs.map((i) => JSON.stringify(i.fields)),
        now,
      ],
    )
  ).rows;
  return { created: upserted.filter((r) => r.created).length, ids: upserted.map((r) => r.id) };
}

async function addMemberships(
  sql: Sql,
  listId: number,
  subscriberIds: number[],
  now: Millis,
): Promise<number> {
  if (subscriberIds.length === 0) return 0;
  const result = await sql.query(
    `INSERT INTO memberships (list_id, subscriber_id, created_at)
     SELECT $1, subscriber_id, $3 FROM unnest($2::bigint[]) AS subscriber_id
     ON CONFLICT DO NOTHING`,
    [listId, subscriberIds, now],
  );
  return result.rowCount;
}
