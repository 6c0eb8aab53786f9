/**
 * The Store: everything the engine and the commands need from the database, as one async
 * interface so that SQLite (one host) and PostgreSQL (several hosts) keep the same promises.
 * The contract tests in test/integration/store-contract.test.ts run against every implementation.
 *
 * The store is deliberately dumb about policy: the engine decides states (src/domain), the store
 * writes them atomically and fenced.
 */
import type { ReconcileAction, ReconcileResult } from '../domain/reconcile.js';
import type {
  ClaimedDelivery,
  Delivery,
  DeliveryCounts,
  DeliveryState,
  Millis,
  Newsletter,
  NewsletterStatus,
  PendingRecipient,
  RunCounts,
  RunInfo,
  Subscriber,
  VerifiedBody,
} from '../domain/types.js';

export interface SubscriberInput {
  email: string;
  address: string;
  name: string;
  fields: Record<string, string>;
}

export interface ImportSummary {
  created: number;
  updated: number;
  /** Memberships added to the list (0 without --list). */
  addedToList: number;
}

export interface NewNewsletter {
  subject: string;
  templatePath: string;
  from: string | null;
  lists: string[];
  scheduledAt: Millis | null;
}

export interface RunRegistration {
  hostId: string;
  hostname: string;
  pid: number;
  now: Millis;
  leaseMs: number;
}

/** A row's new state, decided by the engine, written only if this run still holds the claim. */
export interface OutcomeWrite {
  deliveryId: number;
  state: Exclude<DeliveryState, 'claimed' | 'skipped'>;
  attempts: number;
  nextAttemptAt: Millis | null;
  smtpReply: string | null;
  queueId: string | null;
  /** Set when the reply means the address must never be mailed again (5.1.x). */
  suppressAddress: { address: string; reason: string } | null;
}

/** What a run leaves for `endRun` to settle, and how it ended. */
export interface RunEnd {
  outcome: string;
  counts: RunCounts;
  error: string | null;
  /** Known outcomes not recorded yet (the write failed): written now. */
  outcomes: OutcomeWrite[];
  /** Rows handed to the transport whose outcome is not known: they become `unknown`. */
  handedOver: number[];
}

/** Rows per state as written (a `retry` of a cancelled newsletter counts as `skipped`). */
export interface StateTally {
  sent: number;
  failed: number;
  retry: number;
  unknown: number;
  skipped: number;
}

export interface RecordedOutcomes {
  applied: number;
  /** Writes the fence refused: this run no longer held those rows. */
  refused: number;
  recorded: StateTally;
}

/** What `endRun` did to the run's rows; `counts` are the run's totals as stored. */
export interface RunSettlement {
  /** False when the run had already been ended by another run: nothing was changed. */
  settled: boolean;
  recorded: StateTally;
  /** Handed over, outcome never known. */
  unknown: number;
  /** Never handed over: back to `retry` (or `skipped` for a cancelled newsletter). */
  released: number;
}

export interface ExpiredRuns {
  runs: number;
  /** Claims of the expired runs that became `unknown`. */
  unknown: number;
  /** `claimed` rows of runs already closed (left by older versions) that became `unknown`. */
  stranded: number;
  /** `retry` rows of cancelled newsletters that became `skipped`. */
  cancelledRetries: number;
}

/** The part of a newsletter that a build read and that must not have changed when sending begins. */
export type NewsletterAsRead = Pick<Newsletter, 'id' | 'scheduledAt' | 'updatedAt'>;

/** One newsletter's count of stranded claims (`Store.strandedClaims`). */
export interface StrandedClaims {
  newsletterId: number;
  count: number;
}

export interface ClaimRequest {
  newsletterId: number;
  runId: number;
  limit: number;
  now: Millis;
  /** Only subscribers with a larger id are considered new: a hint within one run, never the truth. */
  afterSubscriberId: number;
  makeMessageId: (address: string) => string;
}

export interface ClaimResult {
  claimed: ClaimedDelivery[];
  /** Rows written as `skipped` (unsubscribed or suppressed) in the same transaction. */
  skipped: number;
  /** Largest subscriber id looked at, for the next claim's hint. */
  lastSubscriberId: number;
  /** False when the newsletter is no longer `sending` (cancelled): claim nothing more. */
  stillSending: boolean;
}

/** An address that is never mailed again, and why (`smtp`, `bounce`, `operator`, `import`). */
export interface Suppression {
  address: string;
  reason: string;
  source: string;
  createdAt: Millis;
}

/** One recipient of one delivery status notification (RFC 3464), as `bounces import` read it. */
export interface BounceEvent {
  /** The DSN's Message-ID, or the sha256 of its bytes: with the address, its identity. */
  dsnId: string;
  /** Normalised (lower-case), as the ledger keys it. */
  address: string;
  /** hard: 5.x.x and Action failed; soft: 4.x.x or Action delayed. */
  kind: 'hard' | 'soft';
  /** RFC 3463, e.g. `5.1.1`. */
  status: string;
  /** The Diagnostic-Code (or Action) in words. */
  reason: string;
}

export interface BounceResult {
  /** False when this (DSN, address) was imported before: nothing changed. */
  recorded: boolean;
  /** The address was suppressed by this event (false if it already was, or is not yet). */
  suppressed: boolean;
  /** Soft bounces of the address that still count, this one included (0 for a hard bounce). */
  softCount: number;
}

export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  close(): Promise<void>;

  // schema and meta
  schemaVersion(): Promise<{ current: number; latest: number }>;
  migrate(): Promise<{ from: number; to: number }>;
  getMeta(key: string): Promise<string | null>;
  setMeta(key: string, value: string): Promise<void>;
  recordEvent(kind: string, detail: Record<string, unknown>, now: Millis): Promise<void>;

  // subscribers and lists
  /**
   * All or nothing: any error thrown by `rows` (or the store) imports nothing. The rows are staged
   * without holding the write lock, then published in one short transaction
   * (src/store/staged-import.ts), so sends and unsubscribes go on during a long import.
   */
  importSubscribers(
    rows: AsyncIterable<SubscriberInput>,
    options: { list: string | null; fieldNames: string[]; now: Millis },
  ): Promise<ImportSummary>;
  addSubscriber(input: SubscriberInput, lists: string[], now: Millis): Promise<{ created: boolean }>;
  removeSubscriber(address: string): Promise<boolean>;
  unsubscribe(address: string, now: Millis): Promise<boolean>;
  unsubscribeById(subscriberId: number, now: Millis): Promise<{ address: string; changed: boolean } | null>;
  getSubscriber(address: string): Promise<Subscriber | null>;
  listSubscribers(filter: {
    list?: string | undefined;
    afterId: number;
    limit: number;
  }): Promise<Subscriber[]>;
  knownFieldNames(): Promise<string[]>;
  lists(): Promise<{ name: string; members: number }[]>;
  audienceSize(lists: string[]): Promise<number>;

  // newsletters
  createNewsletter(input: NewNewsletter, now: Millis): Promise<Newsletter>;
  getNewsletter(id: number): Promise<Newsletter | null>;
  listNewsletters(): Promise<Newsletter[]>;
  /** draft|scheduled → scheduled at `at`. Returns the status it found when it refused. */
  scheduleNewsletter(
    id: number,
    at: Millis,
    now: Millis,
  ): Promise<{ ok: true } | { ok: false; status: NewsletterStatus }>;
  cancelNewsletter(id: number, now: Millis): Promise<{ ok: true } | { ok: false; status: NewsletterStatus }>;
  counts(newsletterId: number): Promise<DeliveryCounts>;
  deliveries(newsletterId: number, filter: { state?: DeliveryState; limit: number }): Promise<Delivery[]>;

  // runs, leases
  registerRun(registration: RunRegistration): Promise<RunInfo>;
  /** False when the run was ended by someone else (its lease expired): stop at once. */
  renewLease(runId: number, now: Millis, leaseMs: number): Promise<boolean>;
  liveRuns(): Promise<RunInfo[]>;
  /**
   * Ends runs whose lease expired before `now` or that are listed dead; their claims become
   * `unknown`. Also heals what older versions could leave behind: `claimed` rows whose run is
   * already closed become `unknown` (`stranded`), and `retry` rows of a cancelled newsletter
   * become `skipped` (`cancelledRetries`).
   */
  expireRuns(now: Millis, deadRunIds: number[]): Promise<ExpiredRuns>;
  /**
   * Closes the run, by any path, so that none of its rows stays `claimed` (promise 2), in one
   * transaction: the known outcomes it could not record yet are written (fenced as always), the
   * rows it handed to the transport without a known outcome become `unknown`, and every other row
   * it still holds was provably never handed over: back to `retry` untouched (`skipped`,
   * "cancelled", when the newsletter was cancelled). A run that was already ended (its lease
   * expired) changes no delivery. If this throws, the run stays open and expiry settles it.
   */
  endRun(runId: number, end: RunEnd, now: Millis): Promise<RunSettlement>;
  listRuns(limit: number): Promise<RunInfo[]>;

  // the send pipeline
  dueNewsletters(now: Millis): Promise<Newsletter[]>;
  /**
   * Compare-and-set scheduled → sending, storing the verified body, in one transaction. It changes
   * the row only if it is still what the build read (status, send time and `updatedAt`): a
   * `schedule` or an edit made while the body was being built wins, and nothing is sent.
   */
  beginSending(read: NewsletterAsRead, body: VerifiedBody, runId: number, now: Millis): Promise<boolean>;
  /** Compare-and-set scheduled → failed with the reason, on the same condition as beginSending. */
  markBuildFailed(read: NewsletterAsRead, reason: string, now: Millis): Promise<boolean>;
  sendingNewsletters(): Promise<Newsletter[]>;
  claimBatch(request: ClaimRequest): Promise<ClaimResult>;
  /**
   * Writes outcomes in one transaction, each fenced by run id and state `claimed`. A `retry` of a
   * newsletter cancelled meanwhile is written `skipped`, "cancelled": nothing would claim it again.
   */
  recordOutcomes(runId: number, writes: OutcomeWrite[], now: Millis): Promise<RecordedOutcomes>;
  /**
   * Rows this run claimed and never handed over go back to `retry`, due now, attempts unchanged
   * (`skipped`, "cancelled", when the newsletter was cancelled meanwhile).
   */
  releaseClaims(runId: number, deliveryIds: number[], now: Millis): Promise<number>;
  /** sending → sent when no recipient is left to claim and no row is `claimed` or `retry`. */
  completeIfDone(newsletterId: number, now: Millis): Promise<boolean>;

  // the sending account's hourly quota (src/domain/quota.ts)
  /**
   * Reserves up to `wanted` messages of `account`'s quota in the window starting at `windowStart`
   * and returns how many were granted (0 when the window's `limit` is used up). Atomic across
   * connections, processes and hosts: runs reserving at once never get more than `limit` between
   * them.
   */
  reserveQuota(
    account: string,
    windowStart: Millis,
    wanted: number,
    limit: number,
    now: Millis,
  ): Promise<number>;
  /** Gives back `count` reserved messages that were not claimed (never below 0). */
  releaseQuota(account: string, windowStart: Millis, count: number, now: Millis): Promise<void>;
  /** How many messages of `account`'s quota are reserved in that window (0 when none). */
  quotaUsed(account: string, windowStart: Millis): Promise<number>;

  // dry run (read-only) and operators
  pendingRecipients(
    newsletterId: number | null,
    lists: string[],
    afterSubscriberId: number,
    limit: number,
  ): Promise<PendingRecipient[]>;
  /**
   * Per newsletter, how many rows are `claimed` by a run that is closed or missing (stranded, see
   * src/store/stranded.ts): nothing settles them on its own. Newsletters without any are left out.
   */
  strandedClaims(): Promise<StrandedClaims[]>;
  /**
   * Settles `unknown` and stranded `claimed` rows (all of them, or those of `addresses`), never a
   * row a live run holds; on a cancelled newsletter refuses `resend` and writes the `retry` rows
   * `skipped`. One transaction. The rules: src/domain/reconcile.ts.
   */
  reconcile(
    newsletterId: number,
    action: ReconcileAction,
    addresses: string[] | null,
    now: Millis,
  ): Promise<ReconcileResult>;
  suppress(address: string, reason: string, source: string, now: Millis): Promise<void>;

  // suppressions and bounces
  /** One transaction; an address already suppressed keeps its first reason. Returns how many were new. */
  suppressMany(
    entries: readonly { address: string; reason: string }[],
    source: string,
    now: Millis,
  ): Promise<{ added: number }>;
  /**
   * Lifts a suppression; the address's soft bounces stop counting, so that one more soft bounce
   * does not suppress it again at once. False when it was not suppressed.
   */
  unsuppress(address: string, now: Millis): Promise<boolean>;
  /** In address order (bytes), after `afterAddress` (null: from the start). */
  listSuppressions(filter: { afterAddress: string | null; limit: number }): Promise<Suppression[]>;
  /**
   * Records one bounce, once: a (DSN, address) seen before changes nothing. A hard bounce
   * suppresses the address; a soft one does once `softLimit` soft bounces count. One transaction.
   */
  recordBounce(event: BounceEvent, options: { softLimit: number; now: Millis }): Promise<BounceResult>;
}
