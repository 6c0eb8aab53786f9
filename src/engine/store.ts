/**
 * SendStore: what `send-due` and its dry run need from the database, and nothing else. The engine
 * owns this port; src/store/sqlite and src/store/postgres implement it (src/store/README.md maps
 * each method to its file), and the contract suite (test/integration/store-contract.test.ts) holds
 * both to it. What the other commands use (subscribers, lists, reconcile, suppressions…) is
 * src/store/store.ts's CatalogStore.
 *
 * The store is deliberately dumb about policy: the engine and src/domain decide states, the store
 * writes them atomically and fenced. Every time is a `now` passed in (epoch milliseconds), so that
 * tests move time by passing a later one.
 *
 * Glossary: a run is one `send-due` process, registered with a lease it renews; a claim is the
 * ledger row a run inserts (or takes back from `retry`) before any SMTP traffic; the fence is the
 * condition `run_id = this run AND state = 'claimed'` on every write of an outcome.
 */
import type { FieldGaps } from '../domain/audience-fields.js';
import type { OutcomeWrite, StateTally } from '../domain/ledger.js';
import type { MessageIdKey } from '../domain/message-id.js';
import type { Audience, Segment } from '../domain/segment.js';
import type {
  ClaimedDelivery,
  DeliveryCounts,
  Millis,
  Newsletter,
  PendingRecipient,
  RunCounts,
  RunInfo,
  VerifiedBody,
} from '../domain/types.js';

export interface RunRegistration {
  hostId: string;
  hostname: string;
  pid: number;
  /** Where `pid` means something (src/host/pid-scope.ts); null when it cannot be told. */
  pidScope: string | null;
  now: Millis;
  leaseMs: number;
}

/** A run as registered, with what the database noticed while registering it. */
export interface RegisteredRun extends RunInfo {
  /**
   * PostgreSQL: how far this host's clock is from the database server's, when that is more than
   * leases tolerate for anything else than leases (see postgres/lease.ts): a warning, not a refusal.
   */
  clockSkewMs?: number;
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

export interface ClaimRequest {
  newsletterId: number;
  runId: number;
  limit: number;
  now: Millis;
  /** Only subscribers with a larger id are considered new: a hint within one run, never the truth. */
  afterSubscriberId: number;
  /**
   * What each new row's Message-ID is made from (src/domain/message-id.ts). Data, not a function:
   * the SQLite claim may run on the ledger's own thread (src/store/sqlite/ledger-thread.ts).
   */
  messageIds: MessageIdKey;
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

export interface SendStore {
  readonly kind: 'sqlite' | 'postgres';

  /** A meta value (`host_id`: the host the database is bound to, for the clone guard), or null. */
  getMeta(key: string): Promise<string | null>;

  // ---- runs and leases: src/store/sqlite/lease.ts, src/store/postgres/lease.ts ----------------
  //
  // Lease times. SQLite (one host) compares the caller's `now` as it is. PostgreSQL (several
  // hosts) computes every lease time from the database server's clock, so that hosts whose clocks
  // disagree still agree on every lease; there the caller's `now` counts only by how far it is
  // from this process's clock (0 in production; a test moves time by passing a later `now`). On
  // both, a lease set or renewed from `now` ends `leaseMs` after that `now` was read, which is what
  // the engine counts down on its own monotonic clock (lease-keeper.ts).

  /**
   * Records a new run (host, pid and its scope, start) with a lease of `leaseMs` from `now`.
   * PostgreSQL also measures this host's clock against the database's and reports a skew that is
   * too large (`clockSkewMs`): not for leases, which use the database's clock, but for the times a
   * run still reads from its own (send times, retry times, quota hours).
   */
  registerRun(registration: RunRegistration): Promise<RegisteredRun>;
  /** False when the run was ended by someone else (its lease expired): stop at once. */
  renewLease(runId: number, now: Millis, leaseMs: number): Promise<boolean>;
  /** Runs not ended yet, whatever their lease says, oldest first. */
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

  // ---- beginning and completing a newsletter: src/store/{sqlite,postgres}/sending.ts ----------

  /** `scheduled` newsletters whose send time is at or before `now`, the earliest first. */
  dueNewsletters(now: Millis): Promise<Newsletter[]>;
  /**
   * Compare-and-set scheduled → sending, storing the verified body, in one transaction. It changes
   * the row only if it is still what the build read (status, send time and `updatedAt`): a
   * `schedule` or an edit made while the body was being built wins, and nothing is sent.
   */
  beginSending(read: NewsletterAsRead, body: VerifiedBody, runId: number, now: Millis): Promise<boolean>;
  /** Compare-and-set scheduled → failed with the reason, on the same condition as beginSending. */
  markBuildFailed(read: NewsletterAsRead, reason: string, now: Millis): Promise<boolean>;
  /** Every `sending` newsletter, with its stored body: what the runs work on. */
  sendingNewsletters(): Promise<Newsletter[]>;
  /** One newsletter with its lists and body, or null. */
  getNewsletter(id: number): Promise<Newsletter | null>;
  /**
   * sending → sent when no recipient is left to claim and no row is `claimed` or `retry`, read
   * from the ledger in one snapshot, never from a counter. False: not done yet (or not sending).
   */
  completeIfDone(newsletterId: number, now: Millis): Promise<boolean>;

  // ---- the claim: src/store/sqlite/claim.ts, src/store/postgres/claim.ts ----------------------

  /**
   * Claims up to `limit` recipients of a `sending` newsletter for this run, in one transaction
   * whose commit is durable before it returns (no SMTP traffic may start earlier): due `retry`
   * rows first, then subscribers of its lists with no ledger row yet, in subscriber order.
   * Inserting the ledger row is the claim; the UNIQUE (newsletter, address) key makes a second
   * claim of an address impossible on any database, whatever runs race (promise 1). Unsubscribed
   * and suppressed recipients are written `skipped`, with the reason, in the same transaction
   * (promise 2). A run that was already ended claims nothing; a newsletter no longer `sending`
   * returns `stillSending: false`.
   *
   * How each database keeps this, and why the queries are shaped as they are:
   * src/store/sqlite/claim.ts (one write lock, BEGIN IMMEDIATE) and src/store/postgres/claim.ts
   * (row locks with SKIP LOCKED, several hosts claiming at once).
   */
  claimBatch(request: ClaimRequest): Promise<ClaimResult>;

  /**
   * Claims will follow: a store that claims on a thread of its own starts that thread now, so
   * that its start overlaps the run's own work before the first claim (SQLite's ledger thread,
   * src/store/sqlite/ledger-thread.ts; issue 17, session 8). Does nothing on PostgreSQL, or when
   * the store claims on its own connection. Never waits and never fails: a thread that cannot
   * start is found out, and done without, at the first claim.
   */
  prepareToClaim(): void;

  // ---- the fence: src/store/sqlite/fence.ts, src/store/postgres/fence.ts ----------------------

  /**
   * Writes outcomes in one transaction, each fenced by run id and state `claimed`: a write of a
   * run that no longer holds the row is refused (`refused`) and changes nothing. A 5.1.x failure
   * also suppresses the address. A `retry` of a newsletter cancelled meanwhile is written
   * `skipped`, "cancelled": nothing would claim it again.
   */
  recordOutcomes(runId: number, writes: OutcomeWrite[], now: Millis): Promise<RecordedOutcomes>;
  /**
   * Rows this run claimed and never handed over go back to `retry`, due now, attempts unchanged
   * (`skipped`, "cancelled", when the newsletter was cancelled meanwhile). Fenced like outcomes.
   */
  releaseClaims(runId: number, deliveryIds: number[], now: Millis): Promise<number>;

  // ---- the sending account's hourly quota (src/domain/quota.ts) -------------------------------

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

  // ---- the audience, for the build and the dry run: src/store/{sqlite,postgres}/audience.ts ---

  /** Every field name an import has seen: a template may use only these (and the built-in ones). */
  knownFieldNames(): Promise<string[]>;
  /** Rows per state, the pending recipients, and the audience as their sum, in one snapshot. */
  counts(newsletterId: number): Promise<DeliveryCounts>;
  /** How many distinct subscribers the lists have together, within `segment` (src/domain/segment.ts). */
  audienceSize(lists: string[], segment?: Segment | null): Promise<number>;
  /**
   * The audience check's numbers (src/domain/audience-fields.ts): of the recipients a newsletter
   * to `audience` would mail, how many there are, and per field how many have it empty or absent.
   */
  fieldGaps(audience: Audience, fields: readonly string[]): Promise<FieldGaps>;
  /**
   * Recipients of `lists` (within `segment`) with no ledger row for the newsletter (null: none has
   * any), after `afterSubscriberId`, in subscriber order, each with the reason it would be
   * skipped. Reads only: the dry run claims nothing.
   */
  pendingRecipients(
    newsletterId: number | null,
    lists: string[],
    afterSubscriberId: number,
    limit: number,
    segment?: Segment | null,
  ): Promise<PendingRecipient[]>;
}
