/**
 * Lists and opt-outs on SQLite (issue 14): leaving a list or all mail, coming back, taking someone
 * off one list, renaming and deleting a list. Each call is one BEGIN IMMEDIATE transaction (db.ts).
 * The interface and its promises: src/store/list-store.ts; the rules: src/domain/opt-out.ts.
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
import type { SqliteDb } from './db.js';

function find(c: SqliteDb, who: SubscriberRef): FoundSubscriber | undefined {
  return (
    'subscriberId' in who
      ? c.sql('SELECT id, address, status FROM subscribers WHERE id = ?').get(who.subscriberId)
      : c.sql('SELECT id, address, status FROM subscribers WHERE address = ?').get(who.address)
  ) as FoundSubscriber | undefined;
}

function newsletterLists(c: SqliteDb, newsletterId: number): string[] {
  return (
    c
      .sql(
        `SELECT l.name FROM newsletter_lists nl JOIN lists l ON l.id = nl.list_id
         WHERE nl.newsletter_id = ? ORDER BY l.name`,
      )
      .all(newsletterId) as { name: string }[]
  ).map((row) => row.name);
}

export function optOut(
  c: SqliteDb,
  who: SubscriberRef,
  scope: OptOutScope,
  source: OptOutSource,
  now: Millis,
): OptOutResult | null {
  return c.immediate(() => {
    const subscriber = find(c, who);
    if (!subscriber) return null;
    const lists = listsInScope(scope, (newsletterId) => newsletterLists(c, newsletterId));
    if (lists.length === 0) {
      const changed =
        c
          .sql(
            `UPDATE subscribers SET status = 'unsubscribed', unsubscribed_at = ?, unsubscribe_source = ?, updated_at = ?
             WHERE id = ? AND status = 'active'`,
          )
          .run(now, source, now, subscriber.id).changes === 1;
      return optOutDone(subscriber, [], changed);
    }
    const insert = c.sql(
      'INSERT OR IGNORE INTO list_opt_outs (list_name, address, source, created_at) VALUES (?, ?, ?, ?)',
    );
    let changed = false;
    for (const list of lists)
      if (insert.run(list, subscriber.address, source, now).changes === 1) changed = true;
    return optOutDone(subscriber, lists, changed);
  });
}

export function optOutPage(c: SqliteDb, subscriberId: number, newsletterId: number): OptOutPageFacts | null {
  return c.deferred(() => {
    const subscriber = find(c, { subscriberId });
    if (!subscriber) return null;
    return optOutPageFacts(subscriber, newsletterLists(c, newsletterId));
  });
}

export function listOptOuts(
  c: SqliteDb,
  address: string,
): { list: string; source: string; createdAt: Millis }[] {
  return (
    c
      .sql('SELECT list_name, source, created_at FROM list_opt_outs WHERE address = ? ORDER BY list_name')
      .all(address) as ListOptOutRow[]
  ).map(toListOptOut);
}

export function resubscribe(
  c: SqliteDb,
  address: string,
  lists: string[] | null,
  by: string,
  reason: string,
  now: Millis,
): ResubscribeResult {
  return c.immediate((): ResubscribeResult => {
    const subscriber = find(c, { address });
    if (!subscriber) return { ok: false, reason: 'no-subscriber' };
    const suppression = c.sql('SELECT reason, source FROM suppressions WHERE address = ?').get(address) as
      | { reason: string; source: string }
      | undefined;
    if (suppression && !suppressionIsOptOut(suppression.source))
      return { ok: false, reason: 'suppressed', suppression };
    const optedOut = listOptOuts(c, address).map((row) => row.list);
    const clearedLists = listsToClear(optedOut, lists);
    const remove = c.sql('DELETE FROM list_opt_outs WHERE list_name = ? AND address = ?');
    for (const list of clearedLists) remove.run(list, address);
    let clearedAll = false;
    if (lists === null) {
      const status =
        c
          .sql(
            `UPDATE subscribers SET status = 'active', unsubscribed_at = NULL, unsubscribe_source = NULL, updated_at = ?
             WHERE id = ? AND status = 'unsubscribed'`,
          )
          .run(now, subscriber.id).changes === 1;
      const removed =
        suppression !== undefined &&
        c.sql('DELETE FROM suppressions WHERE address = ?').run(address).changes === 1;
      clearedAll = status || removed;
    }
    const done = resubscribed(subscriber, lists, { by, reason }, { clearedAll, clearedLists });
    c.sql('INSERT INTO events (at, kind, detail) VALUES (?, ?, ?)').run(
      now,
      RESUBSCRIBE_EVENT,
      JSON.stringify(done.detail),
    );
    return done.result;
  });
}

export function removeFromList(
  c: SqliteDb,
  address: string,
  list: string,
  now: Millis,
): RemoveFromListResult {
  return c.immediate((): RemoveFromListResult => {
    const subscriber = find(c, { address });
    if (!subscriber) return 'no-subscriber';
    const found = c.sql('SELECT id FROM lists WHERE name = ?').get(list) as { id: number } | undefined;
    if (!found) return 'no-list';
    const removed =
      c.sql('DELETE FROM memberships WHERE list_id = ? AND subscriber_id = ?').run(found.id, subscriber.id)
        .changes === 1;
    if (removed)
      c.sql('INSERT INTO events (at, kind, detail) VALUES (?, ?, ?)').run(
        now,
        'list-member-removed',
        JSON.stringify({ subscriberId: subscriber.id, list }),
      );
    return removed ? 'removed' : 'not-a-member';
  });
}

export function renameList(c: SqliteDb, from: string, to: string, now: Millis): RenameListResult {
  return c.immediate((): RenameListResult => {
    if (!c.sql('SELECT 1 FROM lists WHERE name = ?').get(from)) return { ok: false, reason: 'no-list' };
    if (c.sql('SELECT 1 FROM lists WHERE name = ?').get(to)) return { ok: false, reason: 'name-taken' };
    c.sql('UPDATE lists SET name = ? WHERE name = ?').run(to, from);
    // Opt-outs follow the list; one kept under the new name (a list deleted earlier) stays too.
    c.sql('UPDATE OR IGNORE list_opt_outs SET list_name = ? WHERE list_name = ?').run(to, from);
    c.sql('DELETE FROM list_opt_outs WHERE list_name = ?').run(from);
    c.sql('INSERT INTO events (at, kind, detail) VALUES (?, ?, ?)').run(
      now,
      'list-renamed',
      JSON.stringify({ from, to }),
    );
    return { ok: true };
  });
}

export function deleteList(c: SqliteDb, name: string, now: Millis): DeleteListResult {
  return c.immediate((): DeleteListResult => {
    const found = c.sql('SELECT id FROM lists WHERE name = ?').get(name) as { id: number } | undefined;
    if (!found) return { ok: false, reason: 'no-list' };
    const users = c.sql(listUsers('?')).all(found.id) as ListUser[];
    const excluders = c
      .sql(
        activeExcluders(`EXISTS (SELECT 1 FROM json_each(n.segment, '$.excludeLists') x WHERE x.value = ?)`),
      )
      .all(name) as ListUser[];
    const { active, drafts } = listUsersByRole(users, excluders);
    if (active.length > 0) return { ok: false, reason: 'in-use', newsletters: active };
    c.sql('DELETE FROM newsletter_lists WHERE list_id = ?').run(found.id);
    const members = (
      c.sql('SELECT count(*) AS n FROM memberships WHERE list_id = ?').get(found.id) as { n: number }
    ).n;
    // Memberships go with it (ON DELETE CASCADE); subscribers and opt-outs stay.
    c.sql('DELETE FROM lists WHERE id = ?').run(found.id);
    c.sql('INSERT INTO events (at, kind, detail) VALUES (?, ?, ?)').run(
      now,
      'list-deleted',
      JSON.stringify({ list: name, members, drafts: drafts.map((draft) => draft.id) }),
    );
    return { ok: true, members, drafts };
  });
}
