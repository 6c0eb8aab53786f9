/**
 * The whole store: the engine's SendStore (src/engine/store.ts) and the CatalogStore below, which
 * serves the commands (subscribers and lists, newsletters, runs, reconcile, suppressions and
 * bounces). `Store` is what `openStore` returns and the commands receive; the engine is handed
 * the same object and sees only its SendStore side.
 *
 * Both implementations (sqlite/sqlite-store.ts, postgres/postgres-store.ts) keep the same
 * promises, checked by the same contract suite; README.md says which file does what.
 */
import type { ForgetResult, ForgottenAddresses } from '../domain/forgotten.js';
import type { DeleteOutcome } from '../domain/newsletter-life.js';
import type { PruneCandidate, PruneKeptReason } from '../domain/prune.js';
import type { Segment } from '../domain/segment.js';
import type { ReconcileAction, ReconcileResult } from '../domain/reconcile.js';
import type { StoredTemplate } from '../domain/stored-template.js';
import type {
  Delivery,
  DeliveryState,
  Millis,
  Newsletter,
  NewsletterStatus,
  RunInfo,
  Subscriber,
} from '../domain/types.js';
import type { FailpointHook } from '../engine/failpoints.js';
import type { SendStore } from '../engine/store.js';
import type { ListManagement } from './list-store.js';
import type { ReportStore } from './report-store.js';

export type Store = SendStore & CatalogStore;

/** A list, as `recipients list --lists` and doctor's sending-time estimate show it. */
export interface ListSummary {
  name: string;
  /** Everyone on the list, unsubscribed and suppressed people included. */
  members: number;
  /**
   * The members a newsletter to this list would be sent to now: active and not suppressed (the
   * others are recorded `skipped`, src/domain/ledger-reasons.ts).
   */
  reachable: number;
}

export interface SubscriberInput {
  email: string;
  address: string;
  name: string;
  fields: Record<string, string>;
  /** Lists this row joins (an import's `lists` column, as `recipients export` writes it). */
  lists?: string[];
}

/** Where an import's rows go: the list they join (if any), the CSV's field names, the time written. */
export interface ImportTarget {
  list: string | null;
  fieldNames: string[];
  now: Millis;
  /** The import's failpoints (src/engine/failpoints.ts); none: it never stops at one. */
  at?: FailpointHook | undefined;
  /**
   * `--sync`: `list`'s membership becomes exactly the imported addresses; the others leave it
   * (in the same publish transaction). Nobody is deleted, and no opt-out is touched.
   */
  sync?: boolean | undefined;
  /** `--dry-run`: stage, count what the publish would change, publish nothing. */
  dryRun?: boolean | undefined;
  /** Some row carries `lists` (a `lists` column): the publish joins them too. */
  rowLists?: boolean | undefined;
}

export interface ImportSummary {
  created: number;
  updated: number;
  /** Memberships added to the list (0 without --list). */
  addedToList: number;
  /** With `sync` or `dryRun` and a list: members of the list not in the file, who left it (or would). */
  leftList?: number;
  /**
   * With `sync` or `dryRun` and a list: addresses of the file that opted out (of the list, or of
   * all mail, or are suppressed) and so stay out whatever their membership says.
   */
  stayedOut?: number;
}

export interface NewNewsletter {
  subject: string;
  templatePath: string;
  from: string | null;
  lists: string[];
  scheduledAt: Millis | null;
  /** The part of the lists it goes to (src/domain/segment.ts); absent or null: the whole lists. */
  segment?: Segment | null | undefined;
  /** The template and its includes as read now (src/domain/stored-template.ts); none: read at build. */
  template?: StoredTemplate | null | undefined;
  /** The zone `--at` was typed in (src/domain/zone.ts); none: TZ. */
  scheduledZone?: string | null | undefined;
}

/**
 * What `edit` changes: each field given replaces the stored one; one left out stays. `lists`
 * replaces the whole set. A new template comes with its source (`template`), never a path alone.
 * (Engineer A's segment options add their field here.)
 */
export interface NewsletterPatch {
  subject?: string | undefined;
  template?: { path: string; source: StoredTemplate } | undefined;
  from?: string | undefined;
  lists?: string[] | undefined;
  /** The new segment (src/domain/segment.ts): null removes it (the whole lists); undefined keeps it. */
  segment?: Segment | null | undefined;
}

/** One newsletter's count of stranded claims (`CatalogStore.strandedClaims`). */
export interface StrandedClaims {
  newsletterId: number;
  count: number;
}

/** A newsletter's failed deliveries whose address is suppressed: all of them counted, the first few named. */
export interface HardBounces {
  count: number;
  addresses: string[];
}

/** An address that is never mailed again, and why (`smtp`, `bounce`, `operator`, `import`). */
export interface Suppression {
  address: string;
  reason: string;
  source: string;
  createdAt: Millis;
  /** The Message-ID of the report (bounce or complaint) that suppressed it; null for the others. */
  reportId: string | null;
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

export type Transition = { ok: true } | { ok: false; status: NewsletterStatus };

/** What `pruneNewsletter` did: rows deleted, or why the newsletter was left as it was. */
export interface PruneOutcome {
  newsletterId: number;
  pruned: boolean;
  /** Null when pruned. */
  reason: PruneKeptReason | null;
  deleted: number;
}

/** A finished `backup`: the copy's size, read back and checked. */
export interface BackupResult {
  file: string;
  bytes: number;
  pages: number;
  /** `PRAGMA integrity_check` of the copy: `ok`, or what it found. */
  integrity: string[];
}

/** What the database holds and what it takes, for doctor's growth check (src/doctor/growth.ts). */
export interface StorageFootprint {
  subscribers: number;
  /** Deliveries: one per (newsletter, recipient) until pruned. */
  ledgerRows: number;
  /** Suppressions, bounce events, runs, events, memberships, quota hours, per-list opt-outs. */
  otherRows: number;
  /** The stored bodies, templates (with their includes) and template paths of every newsletter. */
  newsletterBytes: number;
  /** The database's size as the database reports it (SQLite: pages in use and free). */
  databaseBytes: number;
  /** SQLite: free pages that later writes reuse (a prune leaves them); PostgreSQL: 0. */
  freeBytes: number;
}

export interface CatalogStore extends ListManagement, ReportStore {
  readonly kind: 'sqlite' | 'postgres';
  close(): Promise<void>;

  // schema and meta
  schemaVersion(): Promise<{ current: number; latest: number }>;
  migrate(): Promise<{ from: number; to: number }>;
  setMeta(key: string, value: string): Promise<void>;
  recordEvent(kind: string, detail: Record<string, unknown>, now: Millis): Promise<void>;

  // subscribers and lists: sqlite/subscribers.ts, postgres/subscribers.ts
  /**
   * All or nothing: any error thrown by `rows` (or the store) imports nothing. The rows are staged
   * without holding the write lock, then published in one short transaction
   * (src/store/staged-import.ts), so sends and unsubscribes go on during a long import.
   */
  importSubscribers(rows: AsyncIterable<SubscriberInput>, options: ImportTarget): Promise<ImportSummary>;
  addSubscriber(input: SubscriberInput, lists: string[], now: Millis): Promise<{ created: boolean }>;
  /**
   * Deletes the subscriber (and their memberships). Someone who had opted out (unsubscribed, or
   * suppressed) keeps a suppression, source "removed": a later re-import from a CRM must not make
   * them `active` and mailed again. Per-list opt-outs (list_opt_outs) are kept by address and stay
   * as they are. False when there was no such subscriber.
   */
  removeSubscriber(address: string, now: Millis): Promise<boolean>;
  /**
   * `recipients forget` (a GDPR erasure), one transaction: deletes the subscriber, memberships,
   * fields, suppression and bounces of `address`; rewrites the ledger's rows for it to
   * `forgotten:<hash>` (counts stay right) and drops SMTP replies that name it; keeps only the
   * keyed hash (src/domain/forgotten.ts). `subscriber` false: there was no subscriber row.
   */
  forgetAddress(address: string, now: Millis): Promise<ForgetResult>;
  /** The erased addresses, to keep re-imports and `recipients add` from bringing them back. */
  forgottenAddresses(): Promise<ForgottenAddresses>;
  unsubscribe(address: string, now: Millis): Promise<boolean>;
  unsubscribeById(subscriberId: number, now: Millis): Promise<{ address: string; changed: boolean } | null>;
  getSubscriber(address: string): Promise<Subscriber | null>;
  listSubscribers(filter: {
    list?: string | undefined;
    afterId: number;
    limit: number;
  }): Promise<Subscriber[]>;
  /** Every list by name, with its members and how many of them a newsletter would reach. */
  lists(): Promise<ListSummary[]>;

  // newsletters: sqlite/newsletters.ts, postgres/newsletters.ts
  createNewsletter(input: NewNewsletter, now: Millis): Promise<Newsletter>;
  listNewsletters(): Promise<Newsletter[]>;
  /**
   * draft|scheduled|failed → scheduled at `at` (src/domain/newsletter-life.ts, SCHEDULABLE), with
   * the zone it was typed in (null: TZ); a failed one's failure is cleared. Returns the status it
   * found when it refused.
   */
  scheduleNewsletter(id: number, at: Millis, now: Millis, zone?: string | null): Promise<Transition>;
  /**
   * draft|scheduled|failed (EDITABLE): applies `patch` and moves `updated_at`, so that a run which built the old
   * content cannot begin sending it (beginSending compares it). sqlite/newsletter-life.ts,
   * postgres/newsletter-life.ts. Returns the status it found when it refused.
   */
  editNewsletter(id: number, patch: NewsletterPatch, now: Millis): Promise<Transition>;
  /**
   * Deletes a draft, failed or cancelled newsletter with its ledger rows and lists, unless a row
   * is `sent`, `unknown` or `claimed` (src/domain/newsletter-life.ts). One transaction.
   */
  deleteNewsletter(id: number): Promise<DeleteOutcome>;
  /**
   * draft|scheduled|sending → cancelled; its `retry` rows become `skipped`, "cancelled". Rows a
   * live run holds are left for that run, which writes them final.
   */
  cancelNewsletter(id: number, now: Millis): Promise<Transition>;
  deliveries(newsletterId: number, filter: { state?: DeliveryState; limit: number }): Promise<Delivery[]>;

  // runs: the lease files
  listRuns(limit: number): Promise<RunInfo[]>;

  // quota
  /** How many messages of `account`'s quota are reserved in that window (0 when none). */
  quotaUsed(account: string, windowStart: Millis): Promise<number>;

  // operators: sqlite/reconcile.ts, postgres/reconcile.ts
  /**
   * Per newsletter, how many rows are `claimed` by a run that is closed or missing (stranded, see
   * src/store/conditions.ts): nothing settles them on its own. Newsletters without any are left out.
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

  // upkeep of a database that lives for years: sqlite/{prune,backup,footprint}.ts, postgres/ likewise
  /** Every newsletter that has ledger rows, with what the prune rule looks at. Writes nothing. */
  pruneCandidates(): Promise<PruneCandidate[]>;
  /**
   * Deletes the ledger rows of one newsletter if src/domain/prune.ts allows it (checked again
   * under the store's lock), after keeping its counts on the newsletter row, where `counts`
   * then reads them. Suppressions, opt-outs and bounces are untouched.
   */
  pruneNewsletter(newsletterId: number, sentBefore: Millis, now: Millis): Promise<PruneOutcome>;
  /**
   * A consistent copy of the whole database in `file` (a new, owner-only file), taken while runs
   * go on writing. SQLite only: PostgreSQL refuses and says to use pg_dump.
   */
  backup(file: string): Promise<BackupResult>;
  storageFootprint(): Promise<StorageFootprint>;

  // suppressions and bounces: sqlite/bounces.ts, postgres/bounces.ts
  /** An address already suppressed keeps its first reason. */
  suppress(address: string, reason: string, source: string, now: Millis): Promise<void>;
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
   * The newsletter's `failed` rows whose address is suppressed (a 5.1.x reply suppresses it with
   * the failure): list hygiene that `show` and `status` report. All counted; the first `limit`
   * addresses, in ledger order. sqlite/hard-bounces.ts, postgres/hard-bounces.ts.
   */
  hardBounces(newsletterId: number, limit: number): Promise<HardBounces>;
  /**
   * Records one bounce, once: a (DSN, address) seen before changes nothing. A hard bounce
   * suppresses the address; a soft one does once `softLimit` soft bounces count
   * (src/domain/bounce.ts, bounceSuppresses). One transaction.
   */
  recordBounce(event: BounceEvent, options: { softLimit: number; now: Millis }): Promise<BounceResult>;
}
