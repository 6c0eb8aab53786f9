/**
 * What a list owner does to lists and opt-outs (issue 14): leave a list or all mail, come back,
 * take someone off one list, rename or delete a list. Part of `CatalogStore` (store.ts); each
 * dialect writes it in its lists.ts (sqlite/lists.ts, postgres/lists.ts), one transaction per
 * call. The rules are in src/domain/opt-out.ts.
 */
import type { NewsletterStatus, Millis } from '../domain/types.js';
import type { OptOutPageFacts, OptOutResult, OptOutScope, OptOutSource } from '../domain/opt-out.js';

export type SubscriberRef = { subscriberId: number } | { address: string };

export type RemoveFromListResult = 'removed' | 'not-a-member' | 'no-subscriber' | 'no-list';

export type RenameListResult = { ok: true } | { ok: false; reason: 'no-list' | 'name-taken' };

/** A newsletter that names a list: `lists delete` refuses while one is scheduled or sending. */
export interface ListUser {
  id: number;
  subject: string;
  status: NewsletterStatus;
}

export type DeleteListResult =
  | {
      ok: true;
      /** Memberships that went with the list. */
      members: number;
      /** Drafts that named the list and no longer do. */
      drafts: ListUser[];
    }
  | { ok: false; reason: 'no-list' }
  | { ok: false; reason: 'in-use'; newsletters: ListUser[] };

export type ResubscribeResult =
  | {
      ok: true;
      subscriberId: number;
      /** Whether a global opt-out (or a `removed` suppression) was cleared. */
      clearedAll: boolean;
      /** The per-list opt-outs cleared, by list name. */
      clearedLists: string[];
      /** Still unsubscribed from all mail (a resubscribe to some lists leaves that as it is). */
      stillUnsubscribedAll: boolean;
    }
  | { ok: false; reason: 'no-subscriber' }
  | { ok: false; reason: 'suppressed'; suppression: { reason: string; source: string } };

export interface ListManagement {
  /**
   * THE opt-out, for every way one arrives (serve's one-click and page, `newsletter unsubscribe`,
   * `recipients unsubscribe`, the bounce mailbox's mailto): subscriber `who` leaves the lists of
   * `scope` (a newsletter's lists, some lists, or all mail), recorded with `source` and `now`.
   * One transaction. Null when there is no such subscriber. Leaving a list is kept by list name
   * and address (list_opt_outs): it outlives remove, import --sync and lists delete.
   */
  optOut(
    who: SubscriberRef,
    scope: OptOutScope,
    source: OptOutSource,
    now: Millis,
  ): Promise<OptOutResult | null>;
  /** What the unsubscribe page (GET) shows for a v2 link; null when the subscriber is gone. */
  optOutPage(subscriberId: number, newsletterId: number): Promise<OptOutPageFacts | null>;
  /** The lists `address` has left, by name. */
  listOptOuts(address: string): Promise<{ list: string; source: string; createdAt: Millis }[]>;
  /**
   * Clears opt-outs: of `lists` only, or (null) all of them, the global one and a `removed`
   * suppression included. Refuses an address suppressed for another reason (a bounce, the
   * operator's list). Records an event `resubscribe` with `by` and `reason`.
   */
  resubscribe(
    address: string,
    lists: string[] | null,
    by: string,
    reason: string,
    now: Millis,
  ): Promise<ResubscribeResult>;
  /** Takes `address` off one list; the subscriber and their other lists stay. */
  removeFromList(address: string, list: string, now: Millis): Promise<RemoveFromListResult>;
  /** Renames a list, its opt-outs with it; newsletters keep naming it (they hold its id). */
  renameList(from: string, to: string, now: Millis): Promise<RenameListResult>;
  /**
   * Deletes a list and its memberships (subscribers stay), refused while a scheduled or sending
   * newsletter names it. Other newsletters stop naming it; its opt-outs stay (kept by name).
   */
  deleteList(name: string, now: Millis): Promise<DeleteListResult>;
}
