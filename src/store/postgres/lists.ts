/**
 * Lists and opt-outs on PostgreSQL (issue 14), the twin of sqlite/lists.ts: each call is one
 * transaction; the subscriber's row (or the list's) is locked first, so two opt-outs, or an
 * opt-out and a resubscribe, of one person apply one after the other. The interface and its
 * promises: src/store/list-store.ts; the rules: src/domain/opt-out.ts.
 */
import type { OptOutPageFacts, OptOutResult, OptOutScope, OptOutSource } from '../../domain/opt-out.js';
import {
  listsInScope,
  listsToClear,
  optOutDone,
  optOutPageFacts,
  suppressionIsOptOut,
} from '../../domain/opt-out.js';
import type { Millis } from '../../domain/types.js';
import {
  activeExcluders,
  type FoundSubscriber,
  type ListOptOutRow,
  listUsers,
  listUsersByRole,
  RESUBSCRIBE_EVENT,
  resubscribed,
  toListOptOut,
} from '../list-sql.js';
import type {
  DeleteListResult,
  ListUser,
  RemoveFromListResult,
  RenameListResult,
  ResubscribeResult,
  SubscriberRef,
} from '../list-store.js';
import type { Sql } from './connection.js';
import type { PgDb } from './db.js';

async function find(sql: Sql, who: SubscriberRef, lock: boolean): Promise<FoundSubscriber | undefined> {
  const forUpdate = lock ? ' FOR UPDATE' : '';
  const [row] = (
    'subscriberId' in who
      ? await sql.query<FoundSubscriber>(
          `SELECT id, address, status FROM subscribers WHERE id = $1${forUpdate}`,
          [who.subscriberId],
        )
      : await sql.query<FoundSubscriber>(
          `SELECT id, address, status FROM subscribers WHERE address = $1${forUpdate}`,
          [who.address],
        )
  ).rows;
  return row;
}

async function newsletterLists(sql: Sql, newsletterId: number): Promise<string[]> {
  const found = await sql.query<{ name: string }>(
    `SELECT l.name FROM newsletter_lists nl JOIN lists l ON l.id = nl.list_id
     WHERE nl.newsletter_id = $1 ORDER BY l.name COLLATE "C"`,
    [newsletterId],
  );
  return found.rows.map((row) => row.name);
}

async function event(sql: Sql, now: Millis, kind: string, detail: Record<string, unknown>): Promise<void> {
  await sql.query('INSERT INTO events (at, kind, detail) VALUES ($1, $2, $3)', [
    now,
    kind,
    JSON.stringify(detail),
  ]);
}

export function optOut(
  pg: PgDb,
  who: SubscriberRef,
  scope: OptOutScope,
  source: OptOutSource,
  now: Millis,
): Promise<OptOutResult | null> {
  return pg.tx(async (sql) => {
    const subscriber = await find(sql, who, true);
    if (!subscriber) return null;
    const lists = await listsInScope(scope, (newsletterId) => newsletterLists(sql, newsletterId));
    if (lists.length === 0) {
      const changed =
        (
          await sql.query(
            `UPDATE subscribers SET status = 'unsubscribed', unsubscribed_at = $1, unsubscribe_source = $2, updated_at = $1
             WHERE id = $3 AND status = 'active'`,
            [now, source, subscriber.id],
          )
        ).rowCount === 1;
      return optOutDone(subscriber, [], changed);
    }
    const inserted = await sql.query(
      `INSERT INTO list_opt_outs (list_name, address, source, created_at)
       SELECT unnest($1::text[]), $2, $3, $4 ON CONFLICT DO NOTHING`,
      [lists, subscriber.address, source, now],
    );
    return optOutDone(subscriber, lists, inserted.rowCount > 0);
  });
}

export function optOutPage(
  pg: PgDb,
  subscriberId: number,
  newsletterId: number,
): Promise<OptOutPageFacts | null> {
  return pg.tx(async (sql) => {
    const subscriber = await find(sql, { subscriberId }, false);
    if (!subscriber) return null;
    return optOutPageFacts(subscriber, await newsletterLists(sql, newsletterId));
  });
}

async function optOutsOf(
  sql: Sql,
  address: string,
): Promise<{ list: string; source: string; createdAt: Millis }[]> {
  const found = await sql.query<ListOptOutRow>(
    'SELECT list_name, source, created_at FROM list_opt_outs WHERE address = $1 ORDER BY list_name COLLATE "C"',
    [address],
  );
  return found.rows.map(toListOptOut);
}

export function listOptOuts(
  pg: PgDb,
  address: string,
): Promise<{ list: string; source: string; createdAt: Millis }[]> {
  return pg.tx((sql) => optOutsOf(sql, address));
}

export function resubscribe(
  pg: PgDb,
  address: string,
  lists: string[] | null,
  by: string,
  reason: string,
  now: Millis,
): Promise<ResubscribeResult> {
  return pg.tx(async (sql): Promise<ResubscribeResult> => {
    const subscriber = await find(sql, { address }, true);
    if (!subscriber) return { ok: false, reason: 'no-subscriber' };
    const [suppression] = (
      await sql.query<{ reason: string; source: string }>(
        'SELECT reason, source FROM suppressions WHERE address = $1',
        [address],
      )
    ).rows;
    if (suppression && !suppressionIsOptOut(suppression.source))
      return { ok: false, reason: 'suppressed', suppression };
    const optedOut = (await optOutsOf(sql, address)).map((row) => row.list);
    const clearedLists = listsToClear(optedOut, lists);
    await sql.query('DELETE FROM list_opt_outs WHERE address = $1 AND list_name = ANY($2::text[])', [
      address,
      clearedLists,
    ]);
    let clearedAll = false;
    if (lists === null) {
      const status =
        (
          await sql.query(
            `UPDATE subscribers SET status = 'active', unsubscribed_at = NULL, unsubscribe_source = NULL, updated_at = $1
             WHERE id = $2 AND status = 'unsubscribed'`,
            [now, subscriber.id],
          )
        ).rowCount === 1;
      const removed =
        suppression !== undefined &&
        (await sql.query('DELETE FROM suppressions WHERE address = $1', [address])).rowCount === 1;
      clearedAll = status || removed;
    }
    const done = resubscribed(subscriber, lists, { by, reason }, { clearedAll, clearedLists });
    await event(sql, now, RESUBSCRIBE_EVENT, done.detail);
    return done.result;
  });
}

export function removeFromList(
  pg: PgDb,
  address: string,
  list: string,
  now: Millis,
): Promise<RemoveFromListResult> {
  return pg.tx(async (sql): Promise<RemoveFromListResult> => {
    const subscriber = await find(sql, { address }, true);
    if (!subscriber) return 'no-subscriber';
    const [found] = (await sql.query<{ id: number }>('SELECT id FROM lists WHERE name = $1', [list])).rows;
    if (!found) return 'no-list';
    const removed =
      (
        await sql.query('DELETE FROM memberships WHERE list_id = $1 AND subscriber_id = $2', [
          found.id,
          subscriber.id,
        ])
      ).rowCount === 1;
    if (removed) await event(sql, now, 'list-member-removed', { subscriberId: subscriber.id, list });
    return removed ? 'removed' : 'not-a-member';
  });
}

export function renameList(pg: PgDb, from: string, to: string, now: Millis): Promise<RenameListResult> {
  return pg.tx(async (sql): Promise<RenameListResult> => {
    const [found] = (
      await sql.query<{ id: number }>('SELECT id FROM lists WHERE name = $1 FOR UPDATE', [from])
    ).rows;
    if (!found) return { ok: false, reason: 'no-list' };
    if ((await sql.query('SELECT 1 FROM lists WHERE name = $1', [to])).rowCount > 0)
      return { ok: false, reason: 'name-taken' };
    try {
      await sql.query('UPDATE lists SET name = $1 WHERE id = $2', [to, found.id]);
    } catch (error) {
      // Another session took the name meanwhile (UNIQUE): refused as if it had been there.
      if ((error as { code?: string }).code === '23505') return { ok: false, reason: 'name-taken' };
      throw error;
    }
    // Opt-outs follow the list; one kept under the new name (a list deleted earlier) stays too.
    await sql.query(
      `INSERT INTO list_opt_outs (list_name, address, source, created_at)
       SELECT $1, address, source, created_at FROM list_opt_outs WHERE list_name = $2
       ON CONFLICT DO NOTHING`,
      [to, from],
    );
    await sql.query('DELETE FROM list_opt_outs WHERE list_name = $1', [from]);
    await event(sql, now, 'list-renamed', { from, to });
    return { ok: true };
  });
}

export function deleteList(pg: PgDb, name: string, now: Millis): Promise<DeleteListResult> {
  return pg.tx(async (sql): Promise<DeleteListResult> => {
    const [found] = (
      await sql.query<{ id: number }>('SELECT id FROM lists WHERE name = $1 FOR UPDATE', [name])
    ).rows;
    if (!found) return { ok: false, reason: 'no-list' };
    // The newsletters' rows locked: a schedule of one of them waits for this decision.
    const users = (await sql.query<ListUser>(`${listUsers('$1')} FOR UPDATE OF n`, [found.id])).rows.map(
      (u) => ({
        ...u,
        id: Number(u.id),
      }),
    );
    const excluders = (
      await sql.query<ListUser>(`${activeExcluders("n.segment -> 'excludeLists' ? $1")} FOR UPDATE OF n`, [
        name,
      ])
    ).rows.map((u) => ({ ...u, id: Number(u.id) }));
    const { active, drafts } = listUsersByRole(users, excluders);
    if (active.length > 0) return { ok: false, reason: 'in-use', newsletters: active };
    await sql.query('DELETE FROM newsletter_lists WHERE list_id = $1', [found.id]);
    const [count] = (
      await sql.query<{ n: number }>('SELECT count(*)::int AS n FROM memberships WHERE list_id = $1', [
        found.id,
      ])
    ).rows;
    const members = count?.n ?? 0;
    // Memberships go with it (ON DELETE CASCADE); subscribers and opt-outs stay.
    await sql.query('DELETE FROM lists WHERE id = $1', [found.id]);
    await event(sql, now, 'list-deleted', { list: name, members, drafts: drafts.map((draft) => draft.id) });
    return { ok: true, members, drafts };
  });
}
