/**
 * The SQLite Store. better-sqlite3 is synchronous; the async interface is kept so that the engine
 * runs unchanged on PostgreSQL. Every read-then-write runs in `BEGIN IMMEDIATE`, which takes the
 * database's single write lock up front: two processes can never both read "not yet claimed" and
 * then both claim.
 */
import type Database from 'better-sqlite3';
import { bounceSuppressionReason } from '../../domain/bounce.js';
import { InputError } from '../../domain/errors.js';
import { quotaGrant } from '../../domain/quota.js';
import type {
  ClaimedDelivery,
  Delivery,
  DeliveryCounts,
  DeliveryState,
  Millis,
  Newsletter,
  PendingRecipient,
  RunInfo,
  Subscriber,
  VerifiedBody,
} from '../../domain/types.js';
import type {
  BounceEvent,
  BounceResult,
  ClaimRequest,
  ClaimResult,
  ExpiredRuns,
  ImportSummary,
  NewNewsletter,
  NewsletterAsRead,
  OutcomeWrite,
  RecordedOutcomes,
  RunEnd,
  RunRegistration,
  RunSettlement,
  Store,
  StrandedClaims,
  SubscriberInput,
  Suppression,
} from '../../engine/store.js';
import { LEDGER_REASON } from '../../domain/ledger-reasons.js';
import {
  dropSettled,
  MARKED_SENT_REASON,
  planReconcile,
  type ReconcileAction,
  type ReconcileResult,
  RESEND_REASON,
} from '../../domain/reconcile.js';
import { emptyTally, IS_CANCELLED, tallyWrites } from '../ledger-rules.js';
import { audienceClosed, type CandidateRow, reasonToSkip, toClaimed } from '../claim-candidate.js';
import { importThroughStaging } from '../staged-import.js';
import { strandedClaim } from '../stranded.js';
import { SQLITE_STAGE_BATCH, SqliteStagingArea } from './import-staging.js';
import { currentVersion, latestVersion, migrate } from './migrate.js';
import { type OpenOptions, openSqlite } from './open.js';
import {
  type DeliveryRow,
  NEWSLETTER_SELECT,
  type NewsletterRow,
  type RunRow,
  SUBSCRIBER_SELECT,
  type SubscriberRow,
  toDelivery,
  toNewsletter,
  toRun,
  toSubscriber,
} from './rows.js';

/** The audience of newsletter :nl, as a condition on subscriber `s`. */
const IN_AUDIENCE = `EXISTS (SELECT 1 FROM newsletter_lists nl JOIN memberships m ON m.list_id = nl.list_id
                             WHERE nl.newsletter_id = :nl AND m.subscriber_id = s.id)`;

export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  readonly file: string;
  private readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();

  private constructor(file: string, db: Database.Database) {
    this.file = file;
    this.db = db;
  }

  /**
   * A statement prepared once per connection. Preparing costs more than running most of these
   * statements: the import runs some once per row (a million native statements for the garbage
   * collector, docs/benchmarks.md), the send path several per claim and per outcome write.
   */
  private sql(text: string): Database.Statement {
    let statement = this.statements.get(text);
    if (!statement) {
      statement = this.db.prepare(text);
      this.statements.set(text, statement);
    }
    return statement;
  }

  static open(file: string, options: OpenOptions): SqliteStore {
    return new SqliteStore(file, openSqlite(file, options));
  }

  async close(): Promise<void> {
    this.db.close();
  }

  // ---- schema and meta -------------------------------------------------------------------

  async schemaVersion(): Promise<{ current: number; latest: number }> {
    return { current: currentVersion(this.db), latest: latestVersion() };
  }

  async migrate(): Promise<{ from: number; to: number }> {
    return migrate(this.db, this.file, Date.now());
  }

  async getMeta(key: string): Promise<string | null> {
    const row = this.sql('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
    return row?.value ?? null;
  }

  async setMeta(key: string, value: string): Promise<void> {
    this.sql(
      'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    ).run(key, value);
  }

  async recordEvent(kind: string, detail: Record<string, unknown>, now: Millis): Promise<void> {
    this.sql('INSERT INTO events (at, kind, detail) VALUES (?, ?, ?)').run(now, kind, JSON.stringify(detail));
  }

  // ---- subscribers and lists ---------------------------------------------------------------

  async importSubscribers(
    rows: AsyncIterable<SubscriberInput>,
    options: { list: string | null; fieldNames: string[]; now: Millis },
  ): Promise<ImportSummary> {
    // Staged in a TEMP table (no lock on the database while the CSV streams in), then published
    // in one short transaction: src/store/staged-import.ts, ./import-staging.ts.
    return importThroughStaging(rows, new SqliteStagingArea(this.db, options), SQLITE_STAGE_BATCH);
  }

  async addSubscriber(input: SubscriberInput, lists: string[], now: Millis): Promise<{ created: boolean }> {
    return this.db
      .transaction(() => {
        const { created, id } = this.upsertSubscriber(input, now);
        const addField = this.sql('INSERT OR IGNORE INTO field_names (name) VALUES (?)');
        for (const name of Object.keys(input.fields)) addField.run(name);
        for (const list of lists) this.addMembership(this.ensureList(list, now), id, now);
        return { created };
      })
      .immediate();
  }

  async removeSubscriber(address: string): Promise<boolean> {
    return this.sql('DELETE FROM subscribers WHERE address = ?').run(address).changes === 1;
  }

  async unsubscribe(address: string, now: Millis): Promise<boolean> {
    const result = this.sql(
      "UPDATE subscribers SET status = 'unsubscribed', unsubscribed_at = ?, updated_at = ? WHERE address = ? AND status = 'active'",
    ).run(now, now, address);
    return result.changes === 1;
  }

  async unsubscribeById(
    subscriberId: number,
    now: Millis,
  ): Promise<{ address: string; changed: boolean } | null> {
    const row = this.sql('SELECT address FROM subscribers WHERE id = ?').get(subscriberId) as
      | { address: string }
      | undefined;
    if (!row) return null;
    return { address: row.address, changed: await this.unsubscribe(row.address, now) };
  }

  async getSubscriber(address: string): Promise<Subscriber | null> {
    const row = this.sql(`${SUBSCRIBER_SELECT} WHERE s.address = ?`).get(address) as
      | SubscriberRow
      | undefined;
    return row ? toSubscriber(row) : null;
  }

  async listSubscribers(filter: {
    list?: string | undefined;
    afterId: number;
    limit: number;
  }): Promise<Subscriber[]> {
    const rows = filter.list
      ? this.sql(
          `${SUBSCRIBER_SELECT} WHERE s.id > ? AND s.id IN (SELECT m.subscriber_id FROM memberships m
               JOIN lists l ON l.id = m.list_id WHERE l.name = ?) ORDER BY s.id LIMIT ?`,
        ).all(filter.afterId, filter.list, filter.limit)
      : this.sql(`${SUBSCRIBER_SELECT} WHERE s.id > ? ORDER BY s.id LIMIT ?`).all(
          filter.afterId,
          filter.limit,
        );
    return (rows as SubscriberRow[]).map(toSubscriber);
  }

  async knownFieldNames(): Promise<string[]> {
    return (this.sql('SELECT name FROM field_names ORDER BY name').all() as { name: string }[]).map(
      (r) => r.name,
    );
  }

  async lists(): Promise<{ name: string; members: number }[]> {
    return this.sql(
      `SELECT l.name, (SELECT count(*) FROM memberships m WHERE m.list_id = l.id) AS members
         FROM lists l ORDER BY l.name`,
    ).all() as { name: string; members: number }[];
  }

  async audienceSize(lists: string[]): Promise<number> {
    if (lists.length === 0) return 0;
    const row = this.sql(
      `SELECT count(DISTINCT m.subscriber_id) AS n FROM memberships m JOIN lists l ON l.id = m.list_id
         WHERE l.name IN (SELECT value FROM json_each(?))`,
    ).get(JSON.stringify(lists)) as { n: number };
    return row.n;
  }

  private ensureList(name: string, now: Millis): number {
    this.sql('INSERT OR IGNORE INTO lists (name, created_at) VALUES (?, ?)').run(name, now);
    return (this.sql('SELECT id FROM lists WHERE name = ?').get(name) as { id: number }).id;
  }

  private addMembership(listId: number, subscriberId: number, now: Millis): boolean {
    return (
      this.sql('INSERT OR IGNORE INTO memberships (list_id, subscriber_id, created_at) VALUES (?, ?, ?)').run(
        listId,
        subscriberId,
        now,
      ).changes === 1
    );
  }

  /** Insert or update by normalised address. An import never re-subscribes someone who left. */
  private upsertSubscriber(input: SubscriberInput, now: Millis): { created: boolean; id: number } {
    const existing = this.sql('SELECT id, fields FROM subscribers WHERE address = ?').get(input.address) as
      | { id: number; fields: string }
      | undefined;
    if (existing) {
      const fields = { ...(JSON.parse(existing.fields) as Record<string, string>), ...input.fields };
      this.sql('UPDATE subscribers SET email = ?, name = ?, fields = ?, updated_at = ? WHERE id = ?').run(
        input.email,
        input.name,
        JSON.stringify(fields),
        now,
        existing.id,
      );
      return { created: false, id: existing.id };
    }
    const result = this.sql(
      'INSERT INTO subscribers (email, address, name, fields, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)',
    ).run(input.email, input.address, input.name, JSON.stringify(input.fields), now, now);
    return { created: true, id: Number(result.lastInsertRowid) };
  }

  // ---- newsletters ---------------------------------------------------------------------------

  async createNewsletter(input: NewNewsletter, now: Millis): Promise<Newsletter> {
    const id = this.db
      .transaction(() => {
        const listIds = input.lists.map((name) => {
          const row = this.sql('SELECT id FROM lists WHERE name = ?').get(name) as { id: number } | undefined;
          if (!row)
            throw new InputError(`There is no list named "${name}".`, [
              'See the lists with `newsletter recipients list --lists`.',
            ]);
          return row.id;
        });
        const result = this.sql(
          `INSERT INTO newsletters (subject, template_path, from_address, status, scheduled_at, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)`,
        ).run(
          input.subject,
          input.templatePath,
          input.from,
          input.scheduledAt === null ? 'draft' : 'scheduled',
          input.scheduledAt,
          now,
          now,
        );
        const newsletterId = Number(result.lastInsertRowid);
        const link = this.sql('INSERT INTO newsletter_lists (newsletter_id, list_id) VALUES (?, ?)');
        for (const listId of listIds) link.run(newsletterId, listId);
        return newsletterId;
      })
      .immediate();
    return (await this.getNewsletter(id)) as Newsletter;
  }

  async getNewsletter(id: number): Promise<Newsletter | null> {
    const row = this.sql(`${NEWSLETTER_SELECT} WHERE n.id = ?`).get(id) as NewsletterRow | undefined;
    return row ? toNewsletter(row) : null;
  }

  async listNewsletters(): Promise<Newsletter[]> {
    return (this.sql(`${NEWSLETTER_SELECT} ORDER BY n.id`).all() as NewsletterRow[]).map(toNewsletter);
  }

  async scheduleNewsletter(id: number, at: Millis, now: Millis) {
    return this.transition(id, ['draft', 'scheduled'], () =>
      this.sql(
        "UPDATE newsletters SET status = 'scheduled', scheduled_at = ?, updated_at = ? WHERE id = ?",
      ).run(at, now, id),
    );
  }

  async cancelNewsletter(id: number, now: Millis) {
    return this.transition(id, ['draft', 'scheduled', 'sending'], () => {
      this.sql(
        "UPDATE newsletters SET status = 'cancelled', updated_at = ?, finished_at = ? WHERE id = ?",
      ).run(now, now, id);
      // Rows waiting for a retry will never be claimed now: record why. Rows a live run holds
      // (`claimed`) are left for that run, which writes them final (recordOutcomes, endRun: a
      // 4xx or a row never handed over becomes `skipped`, "cancelled"); recipients never claimed
      // stay unclaimed.
      this.sql(
        "UPDATE deliveries SET state = 'skipped', reason = ?, next_attempt_at = NULL, updated_at = ? WHERE newsletter_id = ? AND state = 'retry'",
      ).run(LEDGER_REASON.cancelled, now, id);
    });
  }

  private transition(
    id: number,
    from: string[],
    apply: () => void,
  ): { ok: true } | { ok: false; status: Newsletter['status'] } {
    return this.db
      .transaction(() => {
        const row = this.sql('SELECT status FROM newsletters WHERE id = ?').get(id) as
          | { status: string }
          | undefined;
        if (!row)
          throw new InputError(`There is no newsletter ${id}.`, ['See them all with `newsletter list`.']);
        if (!from.includes(row.status))
          return { ok: false as const, status: row.status as Newsletter['status'] };
        apply();
        return { ok: true as const };
      })
      .immediate();
  }

  async counts(newsletterId: number): Promise<DeliveryCounts> {
    return this.db.transaction(() => this.countsNow(newsletterId)).deferred();
  }

  private countsNow(newsletterId: number): DeliveryCounts {
    const counts: DeliveryCounts = {
      audience: 0,
      pending: 0,
      claimed: 0,
      sent: 0,
      failed: 0,
      retry: 0,
      unknown: 0,
      skipped: 0,
    };
    const rows = this.sql(
      'SELECT state, count(*) AS n FROM deliveries WHERE newsletter_id = ? GROUP BY state',
    ).all(newsletterId) as { state: DeliveryState; n: number }[];
    for (const row of rows) counts[row.state] = row.n;
    counts.pending = this.pendingCount(newsletterId);
    counts.audience = counts.pending + rows.reduce((sum, row) => sum + row.n, 0);
    return counts;
  }

  private pendingCount(newsletterId: number): number {
    const newsletter = this.sql('SELECT status, finished_at FROM newsletters WHERE id = ?').get(
      newsletterId,
    ) as { status: string; finished_at: number | null } | undefined;
    if (!newsletter || audienceClosed(newsletter)) return 0;
    const row = this.sql(
      `SELECT count(*) AS n FROM subscribers s WHERE ${IN_AUDIENCE}
           AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.newsletter_id = :nl AND d.address = s.address)`,
    ).get({ nl: newsletterId }) as { n: number };
    return row.n;
  }

  async deliveries(
    newsletterId: number,
    filter: { state?: DeliveryState; limit: number },
  ): Promise<Delivery[]> {
    const rows = filter.state
      ? this.sql('SELECT * FROM deliveries WHERE newsletter_id = ? AND state = ? ORDER BY id LIMIT ?').all(
          newsletterId,
          filter.state,
          filter.limit,
        )
      : this.sql('SELECT * FROM deliveries WHERE newsletter_id = ? ORDER BY id LIMIT ?').all(
          newsletterId,
          filter.limit,
        );
    return (rows as DeliveryRow[]).map(toDelivery);
  }

  // ---- runs and leases -----------------------------------------------------------------------

  async registerRun(registration: RunRegistration): Promise<RunInfo> {
    const result = this.sql(
      'INSERT INTO runs (host_id, hostname, pid, started_at, lease_until) VALUES (?, ?, ?, ?, ?)',
    ).run(
      registration.hostId,
      registration.hostname,
      registration.pid,
      registration.now,
      registration.now + registration.leaseMs,
    );
    return toRun(this.sql('SELECT * FROM runs WHERE id = ?').get(Number(result.lastInsertRowid)) as RunRow);
  }

  async renewLease(runId: number, now: Millis, leaseMs: number): Promise<boolean> {
    // A run that another run has ended (its lease had expired) cannot bring itself back: the
    // `ended_at IS NULL` condition is what makes a lost lease final.
    return (
      this.sql('UPDATE runs SET lease_until = ? WHERE id = ? AND ended_at IS NULL').run(now + leaseMs, runId)
        .changes === 1
    );
  }

  async liveRuns(): Promise<RunInfo[]> {
    return (this.sql('SELECT * FROM runs WHERE ended_at IS NULL ORDER BY id').all() as RunRow[]).map(toRun);
  }

  async expireRuns(now: Millis, deadRunIds: number[]): Promise<ExpiredRuns> {
    return this.db
      .transaction(() => {
        const expired = this.sql(
          `SELECT id FROM runs WHERE ended_at IS NULL
               AND (lease_until < ? OR id IN (SELECT value FROM json_each(?)))`,
        ).all(now, JSON.stringify(deadRunIds)) as { id: number }[];
        let unknown = 0;
        for (const { id } of expired) {
          // Claimed rows of a run that is gone: the message may or may not have been handed over.
          // `unknown` is never resent on its own (promise 1); an operator settles it (reconcile).
          const changed = this.sql(
            `UPDATE deliveries SET state = 'unknown', updated_at = ?, reason = ?
               WHERE run_id = ? AND state = 'claimed'`,
          ).run(now, LEDGER_REASON.runGone, id).changes;
          unknown += changed;
          this.sql(
            `UPDATE runs SET ended_at = ?, outcome = 'lost', unknown = unknown + ?,
                 error = 'lease expired or process gone; its claims became unknown' WHERE id = ?`,
          ).run(now, changed, id);
        }
        return { runs: expired.length, unknown, ...this.healNow(now) };
      })
      .immediate();
  }

  /**
   * What older versions could leave behind, settled as the current code would have: `claimed`
   * rows of a run that is closed (its error path closed it without settling them) become
   * `unknown`; `retry` rows of a cancelled newsletter (written by a batch in flight during the
   * cancel) become `skipped`. Both use a partial or leading index, so a healthy ledger costs a
   * lookup that finds nothing.
   */
  private healNow(now: Millis): { stranded: number; cancelledRetries: number } {
    const stranded = this.sql(
      `UPDATE deliveries SET state = 'unknown', updated_at = ?, reason = ?
         WHERE ${strandedClaim('deliveries')}`,
    ).run(now, LEDGER_REASON.stranded).changes;
    const cancelledRetries = this.sql(
      `UPDATE deliveries SET state = 'skipped', reason = ?, next_attempt_at = NULL, updated_at = ?
         WHERE state = 'retry' AND newsletter_id IN (SELECT id FROM newsletters WHERE status = 'cancelled')`,
    ).run(LEDGER_REASON.cancelled, now).changes;
    return { stranded, cancelledRetries };
  }

  async endRun(runId: number, end: RunEnd, now: Millis): Promise<RunSettlement> {
    return this.db
      .transaction((): RunSettlement => {
        const run = this.sql('SELECT ended_at FROM runs WHERE id = ?').get(runId) as
          | { ended_at: number | null }
          | undefined;
        const settlement: RunSettlement = { settled: false, recorded: emptyTally(), unknown: 0, released: 0 };
        if (run && run.ended_at === null) {
          settlement.settled = true;
          settlement.recorded = this.recordOutcomesNow(runId, end.outcomes, now).recorded;
          settlement.unknown = this.sql(
            `UPDATE deliveries SET state = 'unknown', reason = ?, updated_at = ?
               WHERE run_id = ? AND state = 'claimed' AND id IN (SELECT value FROM json_each(?))`,
          ).run(LEDGER_REASON.endedBeforeRecording, now, runId, JSON.stringify(end.handedOver)).changes;
          settlement.released = this.releaseNow(runId, null, now);
        }
        const counts = end.counts;
        const recorded = settlement.recorded;
        this.sql(
          `UPDATE runs SET ended_at = coalesce(ended_at, ?), outcome = CASE WHEN ended_at IS NULL THEN ? ELSE outcome END,
               sent = ?, failed = ?, retry = ?, unknown = unknown + ?, skipped = ?, error = coalesce(error, ?)
             WHERE id = ?`,
        ).run(
          now,
          end.outcome,
          counts.sent + recorded.sent,
          counts.failed + recorded.failed,
          counts.retry + recorded.retry,
          counts.unknown + recorded.unknown + settlement.unknown,
          counts.skipped + recorded.skipped,
          end.error,
          runId,
        );
        return settlement;
      })
      .immediate();
  }

  async listRuns(limit: number): Promise<RunInfo[]> {
    return (this.sql('SELECT * FROM runs ORDER BY id DESC LIMIT ?').all(limit) as RunRow[]).map(toRun);
  }

  // ---- the send pipeline ---------------------------------------------------------------------

  async dueNewsletters(now: Millis): Promise<Newsletter[]> {
    return (
      this.sql(
        `${NEWSLETTER_SELECT} WHERE n.status = 'scheduled' AND n.scheduled_at <= ? ORDER BY n.scheduled_at, n.id`,
      ).all(now) as NewsletterRow[]
    ).map(toNewsletter);
  }

  async beginSending(
    read: NewsletterAsRead,
    body: VerifiedBody,
    runId: number,
    now: Millis,
  ): Promise<boolean> {
    // Compare-and-set: the body and the status change land together or not at all. Exactly one
    // row changes for exactly one run; every other run sees 0 and leaves the newsletter alone. The
    // row must also be what the build read: a `schedule --at LATER` made meanwhile wins.
    const result = this.sql(
      `UPDATE newsletters SET status = 'sending', body = ?, started_at = ?, started_by_run = ?, updated_at = ?
         WHERE id = ? AND status = 'scheduled' AND scheduled_at IS ? AND updated_at = ?`,
    ).run(JSON.stringify(body), now, runId, now, read.id, read.scheduledAt, read.updatedAt);
    return result.changes === 1;
  }

  async markBuildFailed(read: NewsletterAsRead, reason: string, now: Millis): Promise<boolean> {
    const result = this.sql(
      `UPDATE newsletters SET status = 'failed', failure_reason = ?, finished_at = ?, updated_at = ?
         WHERE id = ? AND status = 'scheduled' AND scheduled_at IS ? AND updated_at = ?`,
    ).run(reason, now, now, read.id, read.scheduledAt, read.updatedAt);
    return result.changes === 1;
  }

  async sendingNewsletters(): Promise<Newsletter[]> {
    return (
      this.sql(`${NEWSLETTER_SELECT} WHERE n.status = 'sending' ORDER BY n.id`).all() as NewsletterRow[]
    ).map(toNewsletter);
  }

  async claimBatch(request: ClaimRequest): Promise<ClaimResult> {
    return this.db.transaction(() => this.claimNow(request)).immediate();
  }

  /**
   * The claim. Runs inside BEGIN IMMEDIATE, so it holds the only write lock while it reads
   * "who is left" and inserts their rows: no other process can claim in between. The UNIQUE
   * (newsletter_id, address) key would reject a second claim anyway; the lock just means we
   * never hit it. Retries that are due go first, then new recipients in subscriber-id order.
   * The commit (synchronous=FULL) reaches the disk before the engine opens any SMTP conversation.
   */
  private claimNow(request: ClaimRequest): ClaimResult {
    const { newsletterId: nl, runId, now } = request;
    const status = this.sql('SELECT status, finished_at FROM newsletters WHERE id = ?').get(nl) as
      | { status: string; finished_at: number | null }
      | undefined;
    if (status?.status !== 'sending')
      return { claimed: [], skipped: 0, lastSubscriberId: request.afterSubscriberId, stillSending: false };
    // A run that was ended (lease expired, or found dead) claims nothing: expireRuns only looks at
    // live runs, so rows it claimed now would stay `claimed` for ever if it then died.
    const live = this.sql('SELECT 1 FROM runs WHERE id = ? AND ended_at IS NULL').get(runId);
    if (!live)
      return { claimed: [], skipped: 0, lastSubscriberId: request.afterSubscriberId, stillSending: true };

    const claimed: ClaimedDelivery[] = [];
    let skipped = 0;

    const dueRetries = this.sql(
      `SELECT d.id, d.subscriber_id, d.address, d.message_id, d.attempts, s.email, s.name, s.fields, s.status,
                sup.reason AS suppressed
         FROM deliveries d
         LEFT JOIN subscribers s ON s.address = d.address
         LEFT JOIN suppressions sup ON sup.address = d.address
         WHERE d.newsletter_id = ? AND d.state = 'retry' AND d.next_attempt_at <= ?
         ORDER BY d.next_attempt_at, d.id LIMIT ?`,
    ).all(nl, now, request.limit) as ClaimCandidate[];
    for (const row of dueRetries) {
      const skipReason = reasonToSkip(row);
      if (skipReason) {
        this.sql("UPDATE deliveries SET state = 'skipped', reason = ?, updated_at = ? WHERE id = ?").run(
          skipReason,
          now,
          row.id,
        );
        skipped += 1;
        continue;
      }
      this.sql(
        "UPDATE deliveries SET state = 'claimed', run_id = ?, claimed_at = ?, updated_at = ? WHERE id = ?",
      ).run(runId, now, now, row.id);
      claimed.push(toClaimed(nl, parsed(row), row.id, row.message_id, row.attempts));
    }

    let lastSubscriberId = request.afterSubscriberId;
    const room = request.limit - dueRetries.length;
    if (room > 0 && !audienceClosed(status)) {
      const fresh = this.sql(
        `SELECT s.id AS subscriber_id, s.email, s.address, s.name, s.fields, s.status, sup.reason AS suppressed
           FROM subscribers s LEFT JOIN suppressions sup ON sup.address = s.address
           WHERE s.id > :after AND ${IN_AUDIENCE}
             AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.newsletter_id = :nl AND d.address = s.address)
           ORDER BY s.id LIMIT :room`,
      ).all({ nl, after: request.afterSubscriberId, room }) as ClaimCandidate[];
      const insert = this.sql(
        `INSERT INTO deliveries (newsletter_id, subscriber_id, address, state, run_id, message_id, reason, claimed_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      for (const row of fresh) {
        lastSubscriberId = Math.max(lastSubscriberId, row.subscriber_id ?? 0);
        const messageId = request.makeMessageId(row.address);
        const skipReason = reasonToSkip(row);
        if (skipReason) {
          insert.run(nl, row.subscriber_id, row.address, 'skipped', runId, messageId, skipReason, now, now);
          skipped += 1;
          continue;
        }
        const result = insert.run(
          nl,
          row.subscriber_id,
          row.address,
          'claimed',
          runId,
          messageId,
          null,
          now,
          now,
        );
        claimed.push(toClaimed(nl, parsed(row), Number(result.lastInsertRowid), messageId, 0));
      }
    }
    return { claimed, skipped, lastSubscriberId, stillSending: true };
  }

  async recordOutcomes(runId: number, writes: OutcomeWrite[], now: Millis): Promise<RecordedOutcomes> {
    return this.withoutFsync(() =>
      this.db.transaction(() => this.recordOutcomesNow(runId, writes, now)).immediate(),
    );
  }

  private recordOutcomesNow(runId: number, writes: OutcomeWrite[], now: Millis): RecordedOutcomes {
    // The fence: a row changes only while it is still `claimed` by this very run. A run whose
    // lease expired finds its rows `unknown` (or re-claimed by another run) and changes nothing.
    const update = this.sql(
      `UPDATE deliveries SET state = ?, attempts = ?, next_attempt_at = ?, smtp_reply = ?, queue_id = ?,
         reason = ?, updated_at = ?
       WHERE id = ? AND run_id = ? AND state = 'claimed'`,
    );
    const suppress = this.sql(
      'INSERT OR IGNORE INTO suppressions (address, reason, source, created_at) VALUES (?, ?, ?, ?)',
    );
    const applied: OutcomeWrite[] = [];
    for (const write of writes) {
      const reason = write.state === 'failed' || write.state === 'unknown' ? write.smtpReply : null;
      const changes = update.run(
        write.state,
        write.attempts,
        write.nextAttemptAt,
        write.smtpReply,
        write.queueId,
        reason,
        now,
        write.deliveryId,
        runId,
      ).changes;
      if (changes === 0) continue;
      applied.push(write);
      if (write.suppressAddress) {
        suppress.run(write.suppressAddress.address, write.suppressAddress.reason, 'smtp', now);
      }
    }
    // A 4xx of a newsletter cancelled meanwhile would wait for a claim that never comes: final now.
    const retried = applied.filter((write) => write.state === 'retry').map((write) => write.deliveryId);
    const cancelled =
      retried.length === 0
        ? 0
        : this.sql(
            `UPDATE deliveries SET state = 'skipped', reason = ?, next_attempt_at = NULL, updated_at = ?
               WHERE state = 'retry' AND id IN (SELECT value FROM json_each(?)) AND ${IS_CANCELLED}`,
          ).run(LEDGER_REASON.cancelled, now, JSON.stringify(retried)).changes;
    return {
      applied: applied.length,
      refused: writes.length - applied.length,
      recorded: tallyWrites(applied, cancelled),
    };
  }

  async releaseClaims(runId: number, deliveryIds: number[], now: Millis): Promise<number> {
    if (deliveryIds.length === 0) return 0;
    return this.withoutFsync(() =>
      this.db.transaction(() => this.releaseNow(runId, deliveryIds, now)).immediate(),
    );
  }

  /**
   * Rows this run holds and never handed over (all of them when `deliveryIds` is null): back to
   * `retry`, due now, attempts unchanged; `skipped`, "cancelled", for a cancelled newsletter.
   */
  private releaseNow(runId: number, deliveryIds: number[] | null, now: Millis): number {
    return this.sql(
      `UPDATE deliveries SET
           state = CASE WHEN ${IS_CANCELLED} THEN 'skipped' ELSE 'retry' END,
           reason = CASE WHEN ${IS_CANCELLED} THEN ? ELSE reason END,
           next_attempt_at = CASE WHEN ${IS_CANCELLED} THEN NULL ELSE ? END,
           updated_at = ?
         WHERE run_id = ? AND state = 'claimed'
           AND (? IS NULL OR id IN (SELECT value FROM json_each(?)))`,
    ).run(
      LEDGER_REASON.cancelled,
      now,
      now,
      runId,
      deliveryIds === null ? null : 1,
      JSON.stringify(deliveryIds ?? []),
    ).changes;
  }

  /**
   * Runs a write that moves rows out of `claimed` with synchronous=NORMAL: committed to the WAL
   * (safe from a crash of this process) but not fsynced until the next claim, whose FULL commit
   * fsyncs the WAL and every commit before it. A power cut in between can only take such a write
   * back, leaving its rows `claimed`, which then become `unknown`: the safe side, and still within
   * one window of NEWSLETTER_BATCH rows. It halves the fsyncs on the send path, and a fsync blocks
   * the whole process (the SMTP connections too) for as long as the disk takes.
   */
  private withoutFsync<T>(write: () => T): T {
    this.sql('PRAGMA synchronous = NORMAL').run();
    try {
      return write();
    } finally {
      this.sql('PRAGMA synchronous = FULL').run();
    }
  }

  async completeIfDone(newsletterId: number, now: Millis): Promise<boolean> {
    return this.db
      .transaction(() => {
        // Completion is read from the ledger, never from a counter: nobody left to claim, and no
        // row still claimed or waiting for a retry.
        const open = this.sql(
          "SELECT count(*) AS n FROM deliveries WHERE newsletter_id = ? AND state IN ('claimed', 'retry')",
        ).get(newsletterId) as { n: number };
        if (open.n > 0 || this.pendingCount(newsletterId) > 0) return false;
        const result = this.sql(
          "UPDATE newsletters SET status = 'sent', finished_at = ?, updated_at = ? WHERE id = ? AND status = 'sending'",
        ).run(now, now, newsletterId);
        return result.changes === 1;
      })
      .immediate();
  }

  // ---- the hourly quota ------------------------------------------------------------------------

  async reserveQuota(
    account: string,
    windowStart: Millis,
    wanted: number,
    limit: number,
    now: Millis,
  ): Promise<number> {
    // Read, decide and add under the write lock that BEGIN IMMEDIATE takes first: two processes
    // can never both read the same `used` and both take what is left.
    return this.db
      .transaction(() => {
        this.sql(
          'INSERT OR IGNORE INTO quota_usage (account, window_start, used, updated_at) VALUES (?, ?, 0, ?)',
        ).run(account, windowStart, now);
        const { used } = this.sql('SELECT used FROM quota_usage WHERE account = ? AND window_start = ?').get(
          account,
          windowStart,
        ) as { used: number };
        const granted = quotaGrant(used, wanted, limit);
        if (granted > 0) {
          this.sql(
            'UPDATE quota_usage SET used = used + ?, updated_at = ? WHERE account = ? AND window_start = ?',
          ).run(granted, now, account, windowStart);
        }
        return granted;
      })
      .immediate();
  }

  async releaseQuota(account: string, windowStart: Millis, count: number, now: Millis): Promise<void> {
    if (count <= 0) return;
    this.sql(
      'UPDATE quota_usage SET used = max(used - ?, 0), updated_at = ? WHERE account = ? AND window_start = ?',
    ).run(count, now, account, windowStart);
  }

  async quotaUsed(account: string, windowStart: Millis): Promise<number> {
    const row = this.sql('SELECT used FROM quota_usage WHERE account = ? AND window_start = ?').get(
      account,
      windowStart,
    ) as { used: number } | undefined;
    return row?.used ?? 0;
  }

  // ---- dry run and operators -----------------------------------------------------------------

  async pendingRecipients(
    newsletterId: number | null,
    lists: string[],
    afterSubscriberId: number,
    limit: number,
  ): Promise<PendingRecipient[]> {
    const rows = this.sql(
      `SELECT s.id AS subscriber_id, s.email, s.address, s.name, s.fields, s.status, sup.reason AS suppressed
         FROM subscribers s LEFT JOIN suppressions sup ON sup.address = s.address
         WHERE s.id > :after
           AND EXISTS (SELECT 1 FROM memberships m JOIN lists l ON l.id = m.list_id
                       WHERE m.subscriber_id = s.id AND l.name IN (SELECT value FROM json_each(:lists)))
           AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.newsletter_id = :nl AND d.address = s.address)
         ORDER BY s.id LIMIT :limit`,
    ).all({
      after: afterSubscriberId,
      lists: JSON.stringify(lists),
      nl: newsletterId ?? -1,
      limit,
    }) as ClaimCandidate[];
    return rows.map((row) => ({
      newsletterId: newsletterId ?? 0,
      subscriberId: row.subscriber_id,
      email: row.email ?? row.address,
      address: row.address,
      name: row.name ?? '',
      fields: row.fields ? (JSON.parse(row.fields) as Record<string, string>) : {},
      skipReason: reasonToSkip(row),
    }));
  }

  async strandedClaims(): Promise<StrandedClaims[]> {
    return this.sql(
      `SELECT d.newsletter_id AS newsletterId, count(*) AS count FROM deliveries d
         WHERE ${strandedClaim('d')} GROUP BY d.newsletter_id ORDER BY d.newsletter_id`,
    ).all() as StrandedClaims[];
  }

  async reconcile(
    newsletterId: number,
    action: ReconcileAction,
    addresses: string[] | null,
    now: Millis,
  ): Promise<ReconcileResult> {
    // One IMMEDIATE transaction: no run can claim, record or be expired between the reads and
    // the writes, and a cancel cannot slip in between the status read and the retry rows.
    return this.db
      .transaction(() => {
        const newsletter = this.sql('SELECT status FROM newsletters WHERE id = ?').get(newsletterId) as
          | { status: Newsletter['status'] }
          | undefined;
        if (!newsletter)
          throw new InputError(`There is no newsletter ${newsletterId}.`, [
            'See them all with `newsletter list`.',
          ]);
        const plan = planReconcile(newsletter.status, action);
        const targets =
          addresses ??
          (
            this.sql(
              `SELECT address FROM deliveries
                 WHERE newsletter_id = ? AND (state = 'unknown' OR ${strandedClaim('deliveries')}) ORDER BY id`,
            ).all(newsletterId) as { address: string }[]
          ).map((r) => r.address);
        // Only unknown and stranded rows can be settled: an operator cannot turn a `sent` into a
        // resend, nor take a row from a live run. The state conditions are the fence.
        const settle = (state: string) =>
          action === 'mark-sent'
            ? this.sql(
                `UPDATE deliveries SET state = 'sent', reason = @reason, updated_at = @now
                   WHERE newsletter_id = @nl AND address = @address AND ${state}`,
              )
            : this.sql(
                `UPDATE deliveries SET state = 'retry', next_attempt_at = @now, reason = @reason, updated_at = @now
                   WHERE newsletter_id = @nl AND address = @address AND ${state}`,
              );
        const reason = action === 'mark-sent' ? MARKED_SENT_REASON : RESEND_REASON;
        const args = (address: string) => ({ reason, now, nl: newsletterId, address });
        const settleUnknown = settle("state = 'unknown'");
        const settleStranded = settle(strandedClaim('deliveries'));
        const settleable = this.sql(
          `SELECT 1 FROM deliveries WHERE newsletter_id = ? AND address = ?
             AND (state = 'unknown' OR ${strandedClaim('deliveries')})`,
        );
        const heldByLiveRun = this.sql(
          `SELECT 1 FROM deliveries d JOIN runs r ON r.id = d.run_id
             WHERE d.newsletter_id = ? AND d.address = ? AND d.state = 'claimed' AND r.ended_at IS NULL`,
        );
        const result: ReconcileResult = {
          changed: 0,
          stranded: 0,
          notUnknown: [],
          claimedByLiveRun: [],
          cancelledRetries: 0,
          refused: plan.refused,
        };
        for (const address of targets) {
          if (plan.settle) {
            if (settleUnknown.run(args(address)).changes > 0) {
              result.changed += 1;
              continue;
            }
            if (settleStranded.run(args(address)).changes > 0) {
              result.changed += 1;
              result.stranded += 1;
              continue;
            }
          } else if (settleable.get(newsletterId, address)) {
            continue; // held by the refusal, which the result carries
          }
          result.notUnknown.push(address);
          if (heldByLiveRun.get(newsletterId, address)) result.claimedByLiveRun.push(address);
        }
        if (plan.skipRetries) {
          const skipped = this.sql(
            `UPDATE deliveries SET state = 'skipped', reason = ?, next_attempt_at = NULL, updated_at = ?
               WHERE newsletter_id = ? AND state = 'retry' RETURNING address`,
          ).all(LEDGER_REASON.cancelled, now, newsletterId) as { address: string }[];
          result.cancelledRetries = skipped.length;
          dropSettled(result, new Set(skipped.map((r) => r.address)));
        }
        if (action === 'resend' && result.changed > 0) {
          // A `sent` newsletter whose unknowns are resent goes back to `sending` so that runs pick it up.
          // finished_at stays set: its audience is closed, so only these rows go out again.
          this.sql(
            "UPDATE newsletters SET status = 'sending', updated_at = ? WHERE id = ? AND status = 'sent'",
          ).run(now, newsletterId);
        }
        this.sql('INSERT INTO events (at, kind, detail) VALUES (?, ?, ?)').run(
          now,
          'reconcile',
          JSON.stringify({
            newsletterId,
            action,
            changed: result.changed,
            stranded: result.stranded,
            cancelledRetries: result.cancelledRetries,
            refused: result.refused,
            addresses,
          }),
        );
        return result;
      })
      .immediate();
  }

  async suppress(address: string, reason: string, source: string, now: Millis): Promise<void> {
    this.sql(
      'INSERT OR IGNORE INTO suppressions (address, reason, source, created_at) VALUES (?, ?, ?, ?)',
    ).run(address, reason, source, now);
  }

  // ---- suppressions and bounces ------------------------------------------------------------

  async suppressMany(
    entries: readonly { address: string; reason: string }[],
    source: string,
    now: Millis,
  ): Promise<{ added: number }> {
    return this.db
      .transaction(() => {
        const insert = this.sql(
          'INSERT OR IGNORE INTO suppressions (address, reason, source, created_at) VALUES (?, ?, ?, ?)',
        );
        let added = 0;
        for (const entry of entries) added += insert.run(entry.address, entry.reason, source, now).changes;
        return { added };
      })
      .immediate();
  }

  async unsuppress(address: string, now: Millis): Promise<boolean> {
    return this.db
      .transaction(() => {
        this.sql(
          "UPDATE bounce_events SET cleared_at = ? WHERE address = ? AND kind = 'soft' AND cleared_at IS NULL",
        ).run(now, address);
        return this.sql('DELETE FROM suppressions WHERE address = ?').run(address).changes === 1;
      })
      .immediate();
  }

  async listSuppressions(filter: { afterAddress: string | null; limit: number }): Promise<Suppression[]> {
    // SQLite compares TEXT as bytes (BINARY), the order PostgreSQL gives with COLLATE "C".
    const rows = this.sql(
      'SELECT address, reason, source, created_at FROM suppressions WHERE address > ? ORDER BY address LIMIT ?',
    ).all(filter.afterAddress ?? '', filter.limit) as {
      address: string;
      reason: string;
      source: string;
      created_at: number;
    }[];
    return rows.map((r) => ({
      address: r.address,
      reason: r.reason,
      source: r.source,
      createdAt: r.created_at,
    }));
  }

  async recordBounce(event: BounceEvent, options: { softLimit: number; now: Millis }): Promise<BounceResult> {
    const { now, softLimit } = options;
    return this.db
      .transaction((): BounceResult => {
        const inserted = this.sql(
          `INSERT OR IGNORE INTO bounce_events (dsn_id, address, kind, status, reason, at)
             VALUES (?, ?, ?, ?, ?, ?)`,
        ).run(event.dsnId, event.address, event.kind, event.status, event.reason, now).changes;
        if (inserted === 0) return { recorded: false, suppressed: false, softCount: 0 };
        const softCount =
          event.kind === 'soft'
            ? (
                this.sql(
                  "SELECT count(*) AS n FROM bounce_events WHERE address = ? AND kind = 'soft' AND cleared_at IS NULL",
                ).get(event.address) as { n: number }
              ).n
            : 0;
        if (event.kind === 'soft' && softCount < softLimit)
          return { recorded: true, suppressed: false, softCount };
        const suppressed =
          this.sql(
            "INSERT OR IGNORE INTO suppressions (address, reason, source, created_at) VALUES (?, ?, 'bounce', ?)",
          ).run(event.address, bounceSuppressionReason(event, softCount), now).changes === 1;
        return { recorded: true, suppressed, softCount };
      })
      .immediate();
  }
}

/** The shared candidate as SQLite selects it: `fields` still JSON text. */
interface ClaimCandidate extends Omit<CandidateRow, 'fields'> {
  fields: string | null;
  id: number;
  message_id: string;
  attempts: number;
}

/** The SQLite row keeps `fields` as JSON text; the shared mapping takes it parsed. */
function parsed(row: ClaimCandidate): CandidateRow {
  return { ...row, fields: row.fields ? (JSON.parse(row.fields) as Record<string, string>) : null };
}
