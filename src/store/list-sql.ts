/**
 * SQL text that both dialects' lists.ts run as it stands (sqlite/lists.ts, postgres/lists.ts), and
 * what both make of the rows it returns.
 */
import type { Millis } from '../domain/types.js';
import type { ListUser, ResubscribeResult } from './list-store.js';

/** A subscriber as lists.ts finds one (by id or address) before changing its opt-outs. */
export interface FoundSubscriber {
  id: number;
  address: string;
  status: string;
}

/** The columns of list_opt_outs that `listOptOuts` reads, in the row's shape. */
export interface ListOptOutRow {
  list_name: string;
  source: string;
  /** A number from SQLite, a bigint's string from PostgreSQL. */
  created_at: number | string;
}

export function toListOptOut(row: ListOptOutRow): { list: string; source: string; createdAt: Millis } {
  return { list: row.list_name, source: row.source, createdAt: Number(row.created_at) };
}

/** Every newsletter that names the list `param` holds, with its status: `lists delete` refuses while one is active. */
export function listUsers(param: string): string {
  return `SELECT n.id, n.subject, n.status FROM newsletters n
  JOIN newsletter_lists nl ON nl.newsletter_id = n.id WHERE nl.list_id = ${param} ORDER BY n.id`;
}

/**
 * The active newsletters whose segment excludes the list named `nameParam`, given the dialect's
 * "the JSON array `segment.excludeLists` of n holds it" condition: `lists delete` refuses them too
 * (the migration's trigger would otherwise refuse the DELETE with a bare constraint error).
 */
export function activeExcluders(excludesName: string): string {
  return `SELECT n.id, n.subject, n.status FROM newsletters n
  WHERE n.status IN ('scheduled', 'sending') AND ${excludesName} ORDER BY n.id`;
}

/**
 * What `lists delete` makes of the newsletters that name the list (`listUsers`) and of the active
 * ones that exclude it (`activeExcluders`): the active ones, each once, refuse the delete; the
 * drafts lose the list.
 */
export function listUsersByRole(
  users: readonly ListUser[],
  excluders: readonly ListUser[],
): { active: ListUser[]; drafts: ListUser[] } {
  const active = users.filter((user) => user.status === 'scheduled' || user.status === 'sending');
  for (const user of excluders) if (!active.some((a) => a.id === user.id)) active.push(user);
  return { active, drafts: users.filter((user) => user.status === 'draft') };
}

/** The event `recipients resubscribe` records: who, why, what it cleared. */
export const RESUBSCRIBE_EVENT = 'resubscribe';

/**
 * What a resubscribe that went ahead records (the event's detail: who and why, by subscriber id,
 * so that `recipients forget` leaves nothing naming the address) and answers. Asked for some lists
 * only, a global opt-out stays as it was.
 */
export function resubscribed(
  subscriber: FoundSubscriber,
  asked: string[] | null,
  why: { by: string; reason: string },
  cleared: { clearedAll: boolean; clearedLists: string[] },
): { detail: Record<string, unknown>; result: ResubscribeResult } {
  const { clearedAll, clearedLists } = cleared;
  return {
    detail: {
      subscriberId: subscriber.id,
      by: why.by,
      reason: why.reason,
      lists: asked,
      clearedAll,
      clearedLists,
    },
    result: {
      ok: true,
      subscriberId: subscriber.id,
      clearedAll,
      clearedLists,
      stillUnsubscribedAll: asked !== null && subscriber.status === 'unsubscribed',
    },
  };
}
