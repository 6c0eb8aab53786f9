/**
 * The PostgreSQL Store: one database shared on purpose by every host that runs `send-due`. This
 * class only opens the pool and hands each call to the file that does it (src/store/README.md has
 * the map); the schema and meta calls are the few lines below. Same semantics as the SQLite
 * store, with row locks where SQLite has its single write lock:
 *
 * - Newsletters change by compare-and-set (`UPDATE … WHERE status = 'scheduled'`): of two runs,
 *   exactly one changes the row (sending.ts).
 * - Claims insert ledger rows under the UNIQUE (newsletter_id, address) key, after locking their
 *   candidates with `SKIP LOCKED` (claim.ts): runs on several hosts take disjoint batches of
 *   one newsletter at once and never wait on each other.
 * - Every outcome is fenced by run id and state `claimed` (fence.ts); a run whose lease passed
 *   finds its rows `unknown` and changes nothing. Leases are on the database server's clock, so
 *   a host whose clock is off cannot misjudge them; it is only warned (lease.ts, lease-clock.ts).
 * - The sending account's hourly quota is one row per (account, hour) that every host reserves
 *   from under its row lock (quota.ts): together they never exceed the limit.
 *
 * No session state: see connection.ts.
 */
import { backupNeedsPgDump } from '../../domain/backup.js';
import type { OutcomeWrite } from '../../domain/ledger.js';
import { describeDatabase } from '../../domain/database-location.js';
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
import * as bounces from './bounces.js';
import * as claim from './claim.js';
import { createPool, poolSql } from './connection.js';
import { PgDb } from './db.js';
import * as fence from './fence.js';
import { storageFootprint } from './footprint.js';
import { hardBounces } from './hard-bounces.js';
import * as lease from './lease.js';
import { currentVersion, latestVersion, migrate } from './migrate.js';
import * as newsletterLife from './newsletter-life.js';
import * as newsletters from './newsletters.js';
import * as quota from './quota.js';
import * as reports from './reports.js';
import type { ReportEvent } from '../report-store.js';
import * as prune from './prune.js';
import * as operators from './reconcile.js';
import * as sending from './sending.js';
import * as forget from './forget.js';
import * as subscribers from './subscribers.js';
import * as listsAndOptOuts from './lists.js';
import type { SubscriberRef } from '../list-store.js';
import type { OptOutScope, OptOutSource } from '../../domain/opt-out.js';

export interface PostgresOpenOptions {
  /** --dry-run and read-only views: every statement runs in a READ ONLY transaction. */
  readonly: boolean;
  /**
   * Connections this process may hold. Two by default: the engine's calls come one at a time,
   * and the lease timer renews beside them. Twenty hosts then need at most forty.
   */
  maxConnections?: number;
}

export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  readonly url: string;
  private readonly pg: PgDb;

  private constructor(url: string, pg: PgDb) {
    this.url = url;
    this.pg = pg;
  }

  /** Opens a pool and checks the connection, so that a wrong URL shows up here with a clear message. */
  static async open(url: string, options: PostgresOpenOptions): Promise<PostgresStore> {
    const pool = createPool(url, options.maxConnections ?? 2);
    const store = new PostgresStore(url, new PgDb(pool, url, options.readonly));
    try {
      const [server] = await store.pg.rows<{ version: number }>(
        "SELECT current_setting('server_version_num')::int AS version",
      );
      store.pg.serverVersion = server?.version ?? 0;
    } catch (error) {
      await store.close();
      throw error;
    }
    return store;
  }

  /** A description of the database without its password. */
  get where(): string {
    return describeDatabase({ kind: 'postgres', url: this.url });
  }

  async close(): Promise<void> {
    await this.pg.pool.end().catch(() => undefined);
  }

  // ---- schema and meta -------------------------------------------------------------------

  async schemaVersion() {
    return { current: await currentVersion(poolSql(this.pg.pool, this.url)), latest: latestVersion() };
  }

  async migrate() {
    return this.pg.tx((sql) => migrate(sql, this.where, Date.now()));
  }

  async getMeta(key: string): Promise<string | null> {
    const [row] = await this.pg.rows<{ value: string }>('SELECT value FROM meta WHERE key = $1', [key]);
    return row?.value ?? null;
  }

  async setMeta(key: string, value: string): Promise<void> {
    await this.pg.one(
      'INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      [key, value],
    );
  }

  async recordEvent(kind: string, detail: Record<string, unknown>, now: Millis): Promise<void> {
    await this.pg.one('INSERT INTO events (at, kind, detail) VALUES ($1, $2, $3::jsonb)', [
      now,
      kind,
      JSON.stringify(detail),
    ]);
  }

  // ---- subscribers and lists: subscribers.ts -------------------------------------------------

  async importSubscribers(rows: AsyncIterable<SubscriberInput>, options: ImportTarget) {
    return subscribers.importSubscribers(this.pg, rows, options);
  }
  async addSubscriber(input: SubscriberInput, lists: string[], now: Millis) {
    return subscribers.addSubscriber(this.pg, input, lists, now);
  }
  async removeSubscriber(address: string, now: Millis) {
    return subscribers.removeSubscriber(this.pg, address, now);
  }
  async forgetAddress(address: string, now: Millis) {
    return forget.forgetAddress(this.pg, address, now);
  }
  async forgottenAddresses() {
    return forget.forgottenAddresses(this.pg);
  }
  async unsubscribe(address: string, now: Millis) {
    return subscribers.unsubscribe(this.pg, address, now);
  }
  async unsubscribeById(subscriberId: number, now: Millis) {
    return subscribers.unsubscribeById(this.pg, subscriberId, now);
  }
  async getSubscriber(address: string) {
    return subscribers.getSubscriber(this.pg, address);
  }
  async listSubscribers(filter: { list?: string | undefined; afterId: number; limit: number }) {
    return subscribers.listSubscribers(this.pg, filter);
  }
  async lists() {
    return subscribers.lists(this.pg);
  }

  // ---- lists and opt-outs: lists.ts (issue 14) ----------------------------------------------------

  async optOut(who: SubscriberRef, scope: OptOutScope, source: OptOutSource, now: Millis) {
    return listsAndOptOuts.optOut(this.pg, who, scope, source, now);
  }
  async optOutPage(subscriberId: number, newsletterId: number) {
    return listsAndOptOuts.optOutPage(this.pg, subscriberId, newsletterId);
  }
  async listOptOuts(address: string) {
    return listsAndOptOuts.listOptOuts(this.pg, address);
  }
  async resubscribe(address: string, lists: string[] | null, by: string, reason: string, now: Millis) {
    return listsAndOptOuts.resubscribe(this.pg, address, lists, by, reason, now);
  }
  async removeFromList(address: string, list: string, now: Millis) {
    return listsAndOptOuts.removeFromList(this.pg, address, list, now);
  }
  async renameList(from: string, to: string, now: Millis) {
    return listsAndOptOuts.renameList(this.pg, from, to, now);
  }
  async deleteList(name: string, now: Millis) {
    return listsAndOptOuts.deleteList(this.pg, name, now);
  }

  // ---- newsletters: newsletters.ts -------------------------------------------------------------

  async createNewsletter(input: NewNewsletter, now: Millis) {
    return newsletters.createNewsletter(this.pg, input, now);
  }
  async getNewsletter(id: number) {
    return newsletters.getNewsletter(this.pg, id);
  }
  async listNewsletters() {
    return newsletters.listNewsletters(this.pg);
  }
  async scheduleNewsletter(id: number, at: Millis, now: Millis, zone: string | null = null) {
    return newsletters.scheduleNewsletter(this.pg, id, at, now, zone);
  }
  // edit and delete: newsletter-life.ts
  async editNewsletter(id: number, patch: NewsletterPatch, now: Millis) {
    return newsletterLife.editNewsletter(this.pg, id, patch, now);
  }
  async deleteNewsletter(id: number) {
    return newsletterLife.deleteNewsletter(this.pg, id);
  }
  async cancelNewsletter(id: number, now: Millis) {
    return newsletters.cancelNewsletter(this.pg, id, now);
  }
  async deliveries(newsletterId: number, filter: { state?: DeliveryState; limit: number }) {
    return newsletters.deliveries(this.pg, newsletterId, filter);
  }

  // ---- the audience: audience.ts ---------------------------------------------------------------

  async knownFieldNames() {
    return audience.knownFieldNames(this.pg);
  }
  async audienceSize(lists: string[], segment: Segment | null = null) {
    return audience.audienceSize(this.pg, lists, segment);
  }
  async fieldGaps(target: Audience, fields: readonly string[]) {
    return fieldGaps.fieldGaps(this.pg, target, fields);
  }
  async counts(newsletterId: number) {
    return audience.counts(this.pg, newsletterId);
  }
  async pendingRecipients(
    newsletterId: number | null,
    lists: string[],
    afterSubscriberId: number,
    limit: number,
    segment: Segment | null = null,
  ) {
    return audience.pendingRecipients(this.pg, newsletterId, lists, afterSubscriberId, limit, segment);
  }

  // ---- runs and leases: lease.ts ---------------------------------------------------------------

  async registerRun(registration: RunRegistration) {
    return lease.registerRun(this.pg, registration);
  }
  async renewLease(runId: number, now: Millis, leaseMs: number) {
    return lease.renewLease(this.pg, runId, now, leaseMs);
  }
  async liveRuns() {
    return lease.liveRuns(this.pg);
  }
  async listRuns(limit: number) {
    return lease.listRuns(this.pg, limit);
  }
  async expireRuns(now: Millis, deadRunIds: number[]) {
    return lease.expireRuns(this.pg, now, deadRunIds);
  }
  async endRun(runId: number, end: RunEnd, now: Millis) {
    return lease.endRun(this.pg, runId, end, now);
  }

  // ---- the send pipeline: sending.ts, claim.ts, fence.ts ----------------------------------------

  async dueNewsletters(now: Millis) {
    return sending.dueNewsletters(this.pg, now);
  }
  async sendingNewsletters() {
    return sending.sendingNewsletters(this.pg);
  }
  async beginSending(read: NewsletterAsRead, body: VerifiedBody, runId: number, now: Millis) {
    return sending.beginSending(this.pg, read, body, runId, now);
  }
  async markBuildFailed(read: NewsletterAsRead, reason: string, now: Millis) {
    return sending.markBuildFailed(this.pg, read, reason, now);
  }
  async completeIfDone(newsletterId: number, now: Millis) {
    return sending.completeIfDone(this.pg, newsletterId, now);
  }
  async claimBatch(request: ClaimRequest) {
    return claim.claimBatch(this.pg, request);
  }
  async recordOutcomes(runId: number, writes: OutcomeWrite[], now: Millis) {
    return fence.recordOutcomes(this.pg, runId, writes, now);
  }
  async releaseClaims(runId: number, deliveryIds: number[], now: Millis) {
    return fence.releaseClaims(this.pg, runId, deliveryIds, now);
  }

  // ---- the hourly quota: quota.ts --------------------------------------------------------------

  async reserveQuota(account: string, windowStart: Millis, wanted: number, limit: number, now: Millis) {
    return quota.reserveQuota(this.pg, account, windowStart, wanted, limit, now);
  }
  async releaseQuota(account: string, windowStart: Millis, count: number, now: Millis) {
    return quota.releaseQuota(this.pg, account, windowStart, count, now);
  }
  async quotaUsed(account: string, windowStart: Millis) {
    return quota.quotaUsed(this.pg, account, windowStart);
  }

  // ---- operators: reconcile.ts -----------------------------------------------------------------

  async hardBounces(newsletterId: number, limit: number) {
    return hardBounces(this.pg, newsletterId, limit);
  }
  async strandedClaims() {
    return operators.strandedClaims(this.pg);
  }
  async reconcile(newsletterId: number, action: ReconcileAction, addresses: string[] | null, now: Millis) {
    return operators.reconcile(this.pg, newsletterId, action, addresses, now);
  }

  // ---- upkeep: prune.ts, footprint.ts -----------------------------------------------------------

  async pruneCandidates() {
    return prune.pruneCandidates(this.pg);
  }
  async pruneNewsletter(newsletterId: number, sentBefore: Millis, now: Millis) {
    return prune.pruneNewsletter(this.pg, newsletterId, sentBefore, now);
  }
  /** A shared database is backed up by its server's tools, which see every host's writes. */
  async backup(_file: string): Promise<never> {
    throw backupNeedsPgDump(this.where);
  }
  async storageFootprint() {
    return storageFootprint(this.pg);
  }

  // ---- suppressions and bounces: bounces.ts ----------------------------------------------------

  async suppress(address: string, reason: string, source: string, now: Millis) {
    return bounces.suppress(this.pg, address, reason, source, now);
  }
  async suppressMany(entries: readonly { address: string; reason: string }[], source: string, now: Millis) {
    return bounces.suppressMany(this.pg, entries, source, now);
  }
  async unsuppress(address: string, now: Millis) {
    return bounces.unsuppress(this.pg, address, now);
  }
  async listSuppressions(filter: { afterAddress: string | null; limit: number }) {
    return bounces.listSuppressions(this.pg, filter);
  }
  async recordBounce(event: BounceEvent, options: { softLimit: number; now: Millis }) {
    return bounces.recordBounce(this.pg, event, options);
  }

  // ---- authenticated reports (issue 18): reports.ts --------------------------------------------

  async deliveryById(deliveryId: number) {
    return reports.deliveryById(this.pg, deliveryId);
  }
  async deliveriesByMessageId(messageId: string) {
    return reports.deliveriesByMessageId(this.pg, messageId);
  }
  async recordReport(event: ReportEvent, options: { softLimit: number; now: Millis }) {
    return reports.recordReport(this.pg, event, options);
  }
  async reportCounts(newsletterIds: readonly number[]) {
    return reports.reportCounts(this.pg, newsletterIds);
  }
}
