/**
 * The Store methods both databases implement the same way: a function of the same name in the
 * dialect's files (src/store/sqlite/*.ts, src/store/postgres/*.ts, twins with the same names) that
 * takes the dialect's connection first. The two store classes get them from here instead of each
 * spelling out the same sixty forwarding methods; a class writes itself only what differs between
 * the databases (opening and closing, schema and meta, the send path's claim and fenced writes,
 * which SQLite may hand to its ledger thread, backups, the footprint).
 *
 * A dialect lists its functions once, as a `DialectFunctions<Connection>`: the compiler checks that
 * each one takes that connection and then exactly the Store method's arguments.
 */
import type { Store } from './store.js';

export const DIALECT_METHODS = [
  // subscribers.ts, forget.ts
  'importSubscribers',
  'addSubscriber',
  'removeSubscriber',
  'forgetAddress',
  'forgottenAddresses',
  'unsubscribe',
  'unsubscribeById',
  'getSubscriber',
  'listSubscribers',
  'lists',
  // lists.ts
  'optOut',
  'optOutPage',
  'listOptOuts',
  'resubscribe',
  'removeFromList',
  'renameList',
  'deleteList',
  // newsletters.ts, newsletter-life.ts
  'createNewsletter',
  'getNewsletter',
  'listNewsletters',
  'scheduleNewsletter',
  'editNewsletter',
  'deleteNewsletter',
  'cancelNewsletter',
  'deliveries',
  // audience.ts, field-gaps.ts
  'knownFieldNames',
  'audienceSize',
  'fieldGaps',
  'counts',
  'pendingRecipients',
  // lease.ts
  'registerRun',
  'renewLease',
  'liveRuns',
  'listRuns',
  'expireRuns',
  'endRun',
  // sending.ts
  'dueNewsletters',
  'sendingNewsletters',
  'beginSending',
  'markBuildFailed',
  'completeIfDone',
  // quota.ts
  'reserveQuota',
  'releaseQuota',
  'quotaUsed',
  // reconcile.ts, prune.ts
  'strandedClaims',
  'reconcile',
  'pruneCandidates',
  'pruneNewsletter',
  // bounces.ts, reports.ts
  'suppress',
  'suppressMany',
  'unsuppress',
  'listSuppressions',
  'recordBounce',
  'deliveryById',
  'deliveryTo',
  'recordReport',
  'reportCounts',
] as const satisfies readonly (keyof Store)[];

export type DialectMethod = (typeof DIALECT_METHODS)[number];

type StoreMethod<K extends DialectMethod> = Store[K] extends (...args: infer A) => infer R
  ? { args: A; result: Awaited<R> }
  : never;

/** One dialect's functions for those methods: its connection first, then the method's arguments. */
export type DialectFunctions<Connection> = {
  [K in DialectMethod]: (
    connection: Connection,
    ...args: StoreMethod<K>['args']
  ) => StoreMethod<K>['result'] | Promise<StoreMethod<K>['result']>;
};

/**
 * A base class whose instances have those methods, each calling the dialect's function with the
 * connection given to the constructor. Extended by SqliteStore and PostgresStore.
 */
export function dialectStore<Connection>(
  functions: DialectFunctions<Connection>,
): new (
  connection: Connection,
) => Pick<Store, DialectMethod> {
  return class {
    constructor(connection: Connection) {
      const self = this as unknown as Record<string, unknown>;
      for (const name of DIALECT_METHODS) {
        const fn = functions[name] as (connection: Connection, ...args: unknown[]) => unknown;
        self[name] = async (...args: unknown[]) => fn(connection, ...args);
      }
    }
  } as unknown as new (
    connection: Connection,
  ) => Pick<Store, DialectMethod>;
}
