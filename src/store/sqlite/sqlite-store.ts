/**
 * The SQLite Store: one database file on one host. This class only opens the connection and hands
 * each call to the file that does it (src/store/README.md has the map); the schema and meta calls
 * are the few lines below.
 *
 * better-sqlite3 is synchronous; the async interface is kept so that the engine runs unchanged on
 * PostgreSQL. Every read-then-write runs in `BEGIN IMMEDIATE` (db.ts), which takes the database's
 * single write lock up front: two processes can never both read "not yet claimed" and then both
 * claim.
 */
import type Database from 'better-sqlite3';
import type { OutcomeWrite } from '../../domain/ledger.js';
import type { ReconcileAction } from '../../domain/reconcile.js';
import type { DeliveryState, Millis, VerifiedBody } from '../../domain/types.js';
import type { ClaimRequest, NewsletterAsRead, RunEnd, RunRegistration } from '../../engine/store.js';
import type {
  BounceEvent,
  ImportTarget,
  NewNewsletter,
  NewsletterPatch,
  Store,
  SubscriberInput,
} from '../store.js';
import type { Audience, Segment } from '../../domain/segment.js';
import * as audience from './audience.js';
import * as fieldGaps from './field-gaps.js';
import { backupSqlite } from './backup.js';
import * as bounces from './bounces.js';
import * as claim from './claim.js';
import { SqliteDb } from './db.js';
import * as fence from './fence.js';
import { storageFootprint } from './footprint.js';
import { hardBounces } from './hard-bounces.js';
import * as lease from './lease.js';
import { currentVersion, latestVersion, migrate } from './migrate.js';
import * as newsletterLife from './newsletter-life.js';
import * as newsletters from './newsletters.js';
import { LedgerThread } from './ledger-thread.js';
import { type OpenOptions, openSqlite } from './open.js';
import { META_VALUE } from './queries.js';
import type { ReportEvent } from '../report-store.js';
import * as quota from './quota.js';
import * as reports from './reports.js';
import * as prune from './prune.js';
import * as operators from './reconcile.js';
import * as sending from './sending.js';
import * as forget from './forget.js';
import * as subscribers from './subscribers.js';
import { WalSync } from './wal-sync.js';
import * as listsAndOptOuts from './lists.js';
import type { SubscriberRef } from '../list-store.js';
import type { OptOutScope, OptOutSource } from '../../domain/opt-out.js';

export interface StoreOpenOptions extends OpenOptions {
  /**
   * Claims and outcome writes on the ledger's own thread (ledger-thread.ts): `send-due` sets it.
   * The thread runs the built ledger-worker.js, so only code running from dist/ can set it.
   */
  ledgerThread?: boolean;
}

export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  readonly file: string;
  /** The connection (test/integration/sqlite-durability.test.ts reads its pragmas). */
  readonly db: Database.Database;
  private readonly c: SqliteDb;
  /** The claims' fsync off the event loop (wal-sync.ts); settled at the first claim. */
  private wal: WalSync | null | undefined;
  /** The send path's writes on their own thread (ledger-thread.ts), from the first claim on. */
  private ledger: LedgerThread | null = null;
  /** The thread was asked for and could not start: this store works on its own connection. */
  private ledgerUnavailable = false;

  private constructor(
    file: string,
    db: Database.Database,
    private readonly options: StoreOpenOptions,
  ) {
    this.file = file;
    this.db = db;
    this.c = new SqliteDb(db);
  }

  static open(file: string, options: StoreOpenOptions): SqliteStore {
    return new SqliteStore(file, openSqlite(file, options), options);
  }

  async close(): Promise<void> {
    await this.ledger?.close();
    await this.wal?.close();
    this.db.close();
  }

  // ---- schema and meta -------------------------------------------------------------------

  async schemaVersion() {
    return { current: currentVersion(this.db), latest: latestVersion() };
  }

  async migrate() {
    return migrate(this.db, this.file, Date.now());
  }

  async getMeta(key: string): Promise<string | null> {
    const row = this.c.sql(META_VALUE).get(key) as { value: string } | undefined;
    return row?.value ?? null;
  }

  async setMeta(key: string, value: string): Promise<void> {
    this.c
      .sql(
        'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      )
      .run(key, value);
  }

  async recordEvent(kind: string, detail: Record<string, unknown>, now: Millis): Promise<void> {
    this.c
      .sql('INSERT INTO events (at, kind, detail) VALUES (?, ?, ?)')
      .run(now, kind, JSON.stringify(detail));
  }

  // ---- subscribers and lists: subscribers.ts -------------------------------------------------

  async importSubscribers(rows: AsyncIterable<SubscriberInput>, options: ImportTarget) {
    return subscribers.importSubscribers(this.c, rows, options);
  }
  async addSubscriber(input: SubscriberInput, lists: string[], now: Millis) {
    return subscribers.addSubscriber(this.c, input, lists, now);
  }
  async removeSubscriber(address: string, now: Millis) {
    return subscribers.removeSubscriber(this.c, address, now);
  }
  async forgetAddress(address: string, now: Millis) {
    return forget.forgetAddress(this.c, address, now);
  }
  async forgottenAddresses() {
    return forget.forgottenAddresses(this.c);
  }
  async unsubscribe(address: string, now: Millis) {
    return subscribers.unsubscribe(this.c, address, now);
  }
  async unsubscribeById(subscriberId: number, now: Millis) {
    return subscribers.unsubscribeById(this.c, subscriberId, now);
  }
  async getSubscriber(address: string) {
    return subscribers.getSubscriber(this.c, address);
  }
  async listSubscribers(filter: { list?: string | undefined; afterId: number; limit: number }) {
    return subscribers.listSubscribers(this.c, filter);
  }
  async lists() {
    return subscribers.lists(this.c);
  }

  // ---- lists and opt-outs: lists.ts (issue 14) ----------------------------------------------------

  async optOut(who: SubscriberRef, scope: OptOutScope, source: OptOutSource, now: Millis) {
    return listsAndOptOuts.optOut(this.c, who, scope, source, now);
  }
  async optOutPage(subscriberId: number, newsletterId: number) {
    return listsAndOptOuts.optOutPage(this.c, subscriberId, newsletterId);
  }
  async listOptOuts(address: string) {
    return listsAndOptOuts.listOptOuts(this.c, address);
  }
  async resubscribe(address: string, lists: string[] | null, by: string, reason: string, now: Millis) {
    return listsAndOptOuts.resubscribe(this.c, address, lists, by, reason, now);
  }
  async removeFromList(address: string, list: string, now: Millis) {
    return listsAndOptOuts.removeFromList(this.c, address, list, now);
  }
  async renameList(from: string, to: string, now: Millis) {
    return listsAndOptOuts.renameList(this.c, from, to, now);
  }
  async deleteList(name: string, now: Millis) {
    return listsAndOptOuts.deleteList(this.c, name, now);
  }

  // ---- newsletters: newsletters.ts -------------------------------------------------------------

  async createNewsletter(input: NewNewsletter, now: Millis) {
    return newsletters.createNewsletter(this.c, input, now);
  }
  async getNewsletter(id: number) {
    return newsletters.getNewsletter(this.c, id);
  }
  async listNewsletters() {
    return newsletters.listNewsletters(this.c);
  }
  async scheduleNewsletter(id: number, at: Millis, now: Millis, zone: string | null = null) {
    return newsletters.scheduleNewsletter(this.c, id, at, now, zone);
  }
  // edit and delete: newsletter-life.ts
  async editNewsletter(id: number, patch: NewsletterPatch, now: Millis) {
    return newsletterLife.editNewsletter(this.c, id, patch, now);
  }
  async deleteNewsletter(id: number) {
    return newsletterLife.deleteNewsletter(this.c, id);
  }
  async cancelNewsletter(id: number, now: Millis) {
    return newsletters.cancelNewsletter(this.c, id, now);
  }
  async deliveries(newsletterId: number, filter: { state?: DeliveryState; limit: number }) {
    return newsletters.deliveries(this.c, newsletterId, filter);
  }

  // ---- the audience: audience.ts ---------------------------------------------------------------

  async knownFieldNames() {
    return audience.knownFieldNames(this.c);
  }
  async audienceSize(lists: string[], segment: Segment | null = null) {
    return audience.audienceSize(this.c, lists, segment);
  }
  async fieldGaps(target: Audience, fields: readonly string[]) {
    return fieldGaps.fieldGaps(this.c, target, fields);
  }
  async counts(newsletterId: number) {
    return audience.counts(this.c, newsletterId);
  }
  async pendingRecipients(
    newsletterId: number | null,
    lists: string[],
    afterSubscriberId: number,
    limit: number,
    segment: Segment | null = null,
  ) {
    return audience.pendingRecipients(this.c, newsletterId, lists, afterSubscriberId, limit, segment);
  }

  // ---- runs and leases: lease.ts ---------------------------------------------------------------

  async registerRun(registration: RunRegistration) {
    return lease.registerRun(this.c, registration);
  }
  async renewLease(runId: number, now: Millis, leaseMs: number) {
    return lease.renewLease(this.c, runId, now, leaseMs);
  }
  async liveRuns() {
    return lease.liveRuns(this.c);
  }
  async listRuns(limit: number) {
    return lease.listRuns(this.c, limit);
  }
  async expireRuns(now: Millis, deadRunIds: number[]) {
    return lease.expireRuns(this.c, now, deadRunIds);
  }
  async endRun(runId: number, end: RunEnd, now: Millis) {
    return lease.endRun(this.c, runId, end, now);
  }

  // ---- the send pipeline: sending.ts, claim.ts, fence.ts ----------------------------------------

  async dueNewsletters(now: Millis) {
    return sending.dueNewsletters(this.c, now);
  }
  async sendingNewsletters() {
    return sending.sendingNewsletters(this.c);
  }
  async beginSending(read: NewsletterAsRead, body: VerifiedBody, runId: number, now: Millis) {
    return sending.beginSending(this.c, read, body, runId, now);
  }
  async markBuildFailed(read: NewsletterAsRead, reason: string, now: Millis) {
    return sending.markBuildFailed(this.c, read, reason, now);
  }
  async completeIfDone(newsletterId: number, now: Millis) {
    return sending.completeIfDone(this.c, newsletterId, now);
  }
  /** The ledger thread's connection settings, once a claim started it; null otherwise. */
  async ledgerSettings() {
    return this.ledger ? this.ledger.settings() : null;
  }

  async claimBatch(request: ClaimRequest) {
    if (this.options.ledgerThread && !this.options.readonly && !this.ledgerUnavailable) {
      this.ledger ??= new LedgerThread({ file: this.file, busyTimeoutMs: this.options.busyTimeoutMs });
      if (await this.ledger.started()) return this.ledger.claimBatch(request);
      // It could not start, so nothing reached it: the thread is a speed-up, not a requirement.
      this.ledger = null;
      this.ledgerUnavailable = true;
    }
    if (this.wal === undefined) this.wal = WalSync.forConnection(this.c, this.file);
    return claim.claimBatch(this.c, request, this.wal);
  }
  async recordOutcomes(runId: number, writes: OutcomeWrite[], now: Millis) {
    if (this.ledger) return this.ledger.recordOutcomes(runId, writes, now);
    return fence.recordOutcomes(this.c, runId, writes, now);
  }
  async releaseClaims(runId: number, deliveryIds: number[], now: Millis) {
    if (this.ledger) return this.ledger.releaseClaims(runId, deliveryIds, now);
    return fence.releaseClaims(this.c, runId, deliveryIds, now);
  }

  // ---- the hourly quota: quota.ts --------------------------------------------------------------

  async reserveQuota(account: string, windowStart: Millis, wanted: number, limit: number, now: Millis) {
    return quota.reserveQuota(this.c, account, windowStart, wanted, limit, now);
  }
  async releaseQuota(account: string, windowStart: Millis, count: number, now: Millis) {
    return quota.releaseQuota(this.c, account, windowStart, count, now);
  }
  async quotaUsed(account: string, windowStart: Millis) {
    return quota.quotaUsed(this.c, account, windowStart);
  }

  // ---- operators: reconcile.ts -----------------------------------------------------------------

  async hardBounces(newsletterId: number, limit: number) {
    return hardBounces(this.c, newsletterId, limit);
  }
  async strandedClaims() {
    return operators.strandedClaims(this.c);
  }
  async reconcile(newsletterId: number, action: ReconcileAction, addresses: string[] | null, now: Millis) {
    return operators.reconcile(this.c, newsletterId, action, addresses, now);
  }

  // ---- upkeep: prune.ts, backup.ts, footprint.ts ------------------------------------------------

  async pruneCandidates() {
    return prune.pruneCandidates(this.c);
  }
  async pruneNewsletter(newsletterId: number, sentBefore: Millis, now: Millis) {
    return prune.pruneNewsletter(this.c, newsletterId, sentBefore, now);
  }
  async backup(file: string) {
    return backupSqlite(this.db, file);
  }
  async storageFootprint() {
    return storageFootprint(this.c);
  }

  // ---- suppressions and bounces: bounces.ts ----------------------------------------------------

  async suppress(address: string, reason: string, source: string, now: Millis) {
    return bounces.suppress(this.c, address, reason, source, now);
  }
  async suppressMany(entries: readonly { address: string; reason: string }[], source: string, now: Millis) {
    return bounces.suppressMany(this.c, entries, source, now);
  }
  async unsuppress(address: string, now: Millis) {
    return bounces.unsuppress(this.c, address, now);
  }
  async listSuppressions(filter: { afterAddress: string | null; limit: number }) {
    return bounces.listSuppressions(this.c, filter);
  }
  async recordBounce(event: BounceEvent, options: { softLimit: number; now: Millis }) {
    return bounces.recordBounce(this.c, event, options);
  }

  // ---- authenticated reports (issue 18): reports.ts --------------------------------------------

  async deliveryById(deliveryId: number) {
    return reports.deliveryById(this.c, deliveryId);
  }
  async deliveriesByMessageId(messageId: string) {
    return reports.deliveriesByMessageId(this.c, messageId);
  }
  async recordReport(event: ReportEvent, options: { softLimit: number; now: Millis }) {
    return reports.recordReport(this.c, event, options);
  }
  async reportCounts(newsletterIds: readonly number[]) {
    return reports.reportCounts(this.c, newsletterIds);
  }
}
