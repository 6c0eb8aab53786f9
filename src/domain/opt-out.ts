/**
 * Opting out, per list and of everything (issue 14). A subscriber leaves one list (a row of
 * list_opt_outs, kept by list name and address) or all mail (status `unsubscribed`); each records
 * when and how. The rules every way in shares (`serve`, `newsletter unsubscribe`, `recipients
 * unsubscribe|resubscribe`, and the bounce mailbox's mailto unsubscribes) are here; the stores
 * carry them out in one transaction (`CatalogStore.optOut`).
 */

/**
 * How an opt-out arrived: `one-click` (RFC 8058's POST from a mail provider), `page` (the button
 * on the unsubscribe page: the newsletter's lists), `page-all` (its "all mail from us" button),
 * `command` (`recipients unsubscribe`, `newsletter unsubscribe`), `mailto` (a mail to the
 * List-Unsubscribe mailto address).
 */
export const OPT_OUT_SOURCES = ['one-click', 'page', 'page-all', 'command', 'mailto'] as const;
export type OptOutSource = (typeof OPT_OUT_SOURCES)[number];

/**
 * What is left: every list of one newsletter (a v2 link), some lists by name (`--list`), or all
 * mail. A newsletter that no longer exists, or has no lists, means all mail: the reader asked to
 * stop receiving what that newsletter was, and nothing narrower can be named.
 */
export type OptOutScope =
  | { kind: 'all' }
  | { kind: 'newsletter'; newsletterId: number }
  | { kind: 'lists'; lists: string[] };

export interface OptOutResult {
  subscriberId: number;
  address: string;
  /** True when this was (or became) a global opt-out; `lists` is then empty. */
  all: boolean;
  /** The lists left (for a per-list opt-out), whether or not they had been left before. */
  lists: string[];
  /** False when every opt-out asked for was already there: nothing was written. */
  changed: boolean;
}

/** What the unsubscribe page shows for one link: who, and which lists that newsletter went to. */
export interface OptOutPageFacts {
  address: string;
  /** The newsletter's lists; empty when it has none any more (the page then offers all mail). */
  lists: string[];
  /** Already unsubscribed from all mail. */
  unsubscribedAll: boolean;
}

/**
 * The lists an opt-out scope leaves: none for all mail, the named ones, or every list of the
 * newsletter (`listsOf`, asked only for a newsletter's scope; a promise on PostgreSQL, a value on
 * SQLite). An empty answer means all mail (see OptOutScope).
 */
export function listsInScope<T>(scope: OptOutScope, listsOf: (newsletterId: number) => T): string[] | T {
  if (scope.kind === 'all') return [];
  if (scope.kind === 'lists') return scope.lists;
  return listsOf(scope.newsletterId);
}

/** What an opt-out did: with no list left to name, it was (or became) a global one. */
export function optOutDone(
  subscriber: { id: number; address: string },
  lists: string[],
  changed: boolean,
): OptOutResult {
  return {
    subscriberId: subscriber.id,
    address: subscriber.address,
    all: lists.length === 0,
    lists,
    changed,
  };
}

/** What the unsubscribe page shows for a subscriber and the newsletter's lists. */
export function optOutPageFacts(
  subscriber: { address: string; status: string },
  lists: string[],
): OptOutPageFacts {
  return { address: subscriber.address, lists, unsubscribedAll: subscriber.status === 'unsubscribed' };
}

/**
 * The per-list opt-outs a resubscribe clears: those of the lists asked for, or every one when
 * none is named (`recipients resubscribe` without `--list`).
 */
export function listsToClear(optedOut: readonly string[], asked: readonly string[] | null): string[] {
  return asked === null ? [...optedOut] : optedOut.filter((list) => asked.includes(list));
}

/** Whether a suppression is an opt-out `recipients resubscribe` may clear. Others need `suppress remove`. */
export function suppressionIsOptOut(source: string): boolean {
  return source === 'removed';
}

/** Why `recipients resubscribe` refused, said with what to do instead. */
export function resubscribeRefusal(
  address: string,
  suppression: { reason: string; source: string },
): { message: string; hints: string[] } {
  const bounce = suppression.source === 'bounce' || suppression.source === 'smtp';
  return {
    message: `${address} is suppressed (${suppression.reason}; source ${suppression.source}); resubscribe does not lift a suppression.`,
    hints: bounce
      ? [
          'The address bounced: mail to it failed. Once you know it works again, run `newsletter suppress remove ' +
            address +
            '`, then resubscribe.',
        ]
      : [
          `If the suppression no longer applies, run \`newsletter suppress remove ${address}\`, then resubscribe.`,
        ],
  };
}

/** Who ran a command, for the audit trail: the sudo caller first, then the login. */
export function operatorName(env: NodeJS.ProcessEnv, account: () => string | null = () => null): string {
  // cron and `su -` may leave USER unset: the process's own account (uid's name) is then the truth.
  return env.SUDO_USER || env.USER || env.LOGNAME || account() || 'unknown';
}
