/**
 * The PostgreSQL Store: one database shared on purpose by every host that runs `send-due`.
 * Same semantics as the SQLite store, with row locks where SQLite has its single write lock:
 *
 * - Newsletters change by compare-and-set (`UPDATE … WHERE status = 'scheduled'`): of two runs,
 *   exactly one changes the row.
 * - Claims insert ledger rows under the UNIQUE (newsletter_id, address) key, after locking their
 *   candidates with `SKIP LOCKED` (see claim.ts): runs on several hosts take disjoint batches of
 *   one newsletter at once and never wait on each other.
 * - Every outcome is fenced by run id and state `claimed`; a run whose lease passed finds its rows
 *   `unknown` and changes nothing.
 * - The sending account's hourly quota is one row per (account, hour) that every host reserves
 *   from under its row lock (`reserveQuota`): together they never exceed the limit.
 *
 * Time. The Store interface passes `now` in, and this store compares only such caller times, as
 * the SQLite one does: the contract suite (which moves time by passing a later `now`) holds
 * unchanged, and a run's local view of its lease (src/engine/send-due.ts, LeaseKeeper) is measured
 * on the same clock as the lease in the database. Between hosts that is only safe if their clocks
 * agree with each other, so `registerRun` measures this host's clock against the database's
 * (`clock_timestamp()`) and refuses a run whose clock is off by more than a fraction of the lease
 * (see `clockTolerance`). A skewed host therefore cannot end another host's live run early.
 *
 * No session state: see connection.ts.
 */
import type { Pool } from 'pg';
import { describeDatabase } from '../../config.js';
import { bounceSuppressionReason } from '../../domain/bounce.js';
import { DatabaseError, InputError } from '../../domain/errors.js';
import { quotaGrant } from '../../domain/quota.js';
import type {
  Delivery,
  DeliveryCounts,
  DeliveryState,
  Millis,
  Newsletter,
  NewsletterStatus,
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
import { reasonToSkip } from '../claim-candidate.js';
import { importThroughStaging } from '../staged-import.js';
import { strandedClaim } from '../stranded.js';
import { claimBatch, inAudience } from './claim.js';
import { createPool, poolSql, type Sql, transaction } from './connection.js';
import { POSTGRES_STAGE_BATCH, PostgresStagingArea } from './import-staging.js';
import { addFieldNames, ensureList } from './lists-and-fields.js';
import { currentVersion, latestVersion, migrate } from './migrate.js';
import {
  type ClaimCandidate,
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

export interface PostgresOpenOptions {
  /** --dry-run and read-only views: every statement runs in a READ ONLY transaction. */
  readonly: boolean;
  /**
   * Connections this process may hold. Two by default: the engine's calls come one at a time,
   * and the lease timer renews beside them. Twenty hosts then need at most forty.
   */
  maxConnections?: number;
}

/** Rows per statement when importing a suppression list. */
const IMPORT_BATCH = 500;

/**
 * How far this host's clock may be from the database's. The engine stops handing messages over
 * `min(5 s, lease/4)` before its lease ends (LeaseKeeper's margin); two hosts each within half of
 * that from the database are within the margin of each other, so no host can see another's lease
 * as expired while that run may still send.
 */
export function clockTolerance(leaseMs: number): number {
  return Math.floor(Math.min(5000, leaseMs / 4) / 2);
}

export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  readonly url: string;
  private readonly pool: Pool;
  private readonly readonly: boolean;

  private constructor(url: string, pool: Pool, readonly: boolean) {
    this.url = url;
    this.pool = pool;
    this.readonly = readonly;
  }

  /** Opens a pool and checks the connection, so that a wrong URL shows up here with a clear message. */
  static async open(url: string, options: PostgresOpenOptions): Promise<PostgresStore> {
    const store = new PostgresStore(url, createPool(url, options.maxConnections ?? 2), options.readonly);
    try {
      await store.one('SELECT 1');
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
    await this.pool.end().catch(() => undefined);
  }

  // ---- plumbing -------------------------------------------------------------------------------

  private tx<T>(
    fn: (sql: Sql) => Promise<T>,
    options: { limitIdle: boolean } = { limitIdle: true },
  ): Promise<T> {
    return transaction(this.pool, this.url, { readonly: this.readonly, limitIdle: options.limitIdle }, fn);
  }

  /** One statement, autocommit; READ ONLY when the store was opened read-only. */
  private async one<R>(text: string, values?: readonly unknown[]): Promise<{ rows: R[]; rowCount: number }> {
    if (this.readonly) return this.tx((sql) => sql.query<R>(text, values));
    return poolSql(this.pool, this.url).query<R>(text, values);
  }

  private async rows<R>(text: string, values?: readonly unknown[]): Promise<R[]> {
    return (await this.one<R>(text, values)).rows;
  }

  // ---- schema and meta -------------------------------------------------------------------

  async schemaVersion(): Promise<{ current: number; latest: number }> {
    return { current: await currentVersion(poolSql(this.pool, this.url)), latest: latestVersion() };
  }

  async migrate(): Promise<{ from: number; to: number }> {
    return this.tx((sql) => migrate(sql, this.where, Date.now()));
  }

  async getMeta(key: string): Promise<string | null> {
    const [row] = await this.rows<{ value: string }>('SELECT value FROM meta WHERE key = $1', [key]);
    return row?.value ?? null;
  }

  async setMeta(key: string, value: string): Promise<void> {
    await this.one(
      'INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      [key, value],
    );
  }

  async recordEvent(kind: string, detail: Record<string, unknown>, now: Millis): Promise<void> {
    await this.one('INSERT INTO events (at, kind, detail) VALUES ($1, $2, $3::jsonb)', [
      now,
      kind,
      JSON.stringify(detail),
    ]);
  }

  // ---- subscribers and lists ---------------------------------------------------------------

  async importSubscribers(
    rows: AsyncIterable<SubscriberInput>,
    options: { list: string | null; fieldNames: string[]; now: Millis },
  ): Promise<ImportSummary> {
    // Staged in short transactions, then published in one short one: src/store/staged-import.ts,
    // ./import-staging.ts.
    const area = new PostgresStagingArea((fn) => this.tx(fn), options);
    return importThroughStaging(rows, area, POSTGRES_STAGE_BATCH);
  }

  async addSubscriber(input: SubscriberInput, lists: string[], now: Millis): Promise<{ created: boolean }> {
    return this.tx(async (sql) => {
      const { created, ids } = await upsertSubscribers(sql, [input], now);
      await addFieldNames(sql, Object.keys(input.fields));
      for (const list of lists) await addMemberships(sql, await ensureList(sql, list, now), ids, now);
      return { created: created === 1 };
    });
  }

  async removeSubscriber(address: string): Promise<boolean> {
    return (await this.one('DELETE FROM subscribers WHERE address = $1', [address])).rowCount === 1;
  }

  async unsubscribe(address: string, now: Millis): Promise<boolean> {
    const result = await this.one(
      `UPDATE subscribers SET status = 'unsubscribed', unsubscribed_at = $1, updated_at = $1
       WHERE address = $2 AND status = 'active'`,
      [now, address],
    );
    return result.rowCount === 1;
  }

  async unsubscribeById(
    subscriberId: number,
    now: Millis,
  ): Promise<{ address: string; changed: boolean } | null> {
    const [row] = await this.rows<{ address: string }>('SELECT address FROM subscribers WHERE id = $1', [
      subscriberId,
    ]);
    if (!row) return null;
    return { address: row.address, changed: await this.unsubscribe(row.address, now) };
  }

  async getSubscriber(address: string): Promise<Subscriber | null> {
    const [row] = await this.rows<SubscriberRow>(`${SUBSCRIBER_SELECT} WHERE s.address = $1`, [address]);
    return row ? toSubscriber(row) : null;
  }

  async listSubscribers(filter: {
    list?: string | undefined;
    afterId: number;
    limit: number;
  }): Promise<Subscriber[]> {
    const rows = filter.list
      ? await this.rows<SubscriberRow>(
          `${SUBSCRIBER_SELECT} WHERE s.id > $1 AND s.id IN (SELECT m.subscriber_id FROM memberships m
             JOIN lists l ON l.id = m.list_id WHERE l.name = $2) ORDER BY s.id LIMIT $3`,
          [filter.afterId, filter.list, filter.limit],
        )
      : await this.rows<SubscriberRow>(`${SUBSCRIBER_SELECT} WHERE s.id > $1 ORDER BY s.id LIMIT $2`, [
          filter.afterId,
          filter.limit,
        ]);
    return rows.map(toSubscriber);
  }

  async knownFieldNames(): Promise<string[]> {
    return (await this.rows<{ name: string }>('SELECT name FROM field_names ORDER BY name COLLATE "C"')).map(
      (r) => r.name,
    );
  }

  async lists(): Promise<{ name: string; members: number }[]> {
    return this.rows<{ name: string; members: number }>(
      `SELECT l.name, (SELECT count(*) FROM memberships m WHERE m.list_id = l.id) AS members
       FROM lists l ORDER BY l.name COLLATE "C"`,
    );
  }

  async audienceSize(lists: string[]): Promise<number> {
    if (lists.length === 0) return 0;
    const [row] = await this.rows<{ n: number }>(
      `SELECT count(DISTINCT m.subscriber_id) AS n FROM memberships m JOIN lists l ON l.id = m.list_id
       WHERE l.name = ANY($1::text[])`,
      [lists],
    );
    return row?.n ?? 0;
  }

  // ---- newsletters ---------------------------------------------------------------------------

  async createNewsletter(input: NewNewsletter, now: Millis): Promise<Newsletter> {
    const id = await this.tx(async (sql) => {
      const listIds: number[] = [];
      for (const name of input.lists) {
        const [row] = (await sql.query<{ id: number }>('SELECT id FROM lists WHERE name = $1', [name])).rows;
        if (!row)
          throw new InputError(`There is no list named "${name}".`, [
            'See the lists with `newsletter recipients list --lists`.',
          ]);
        listIds.push(row.id);
      }
      const [created] = (
        await sql.query<{ id: number }>(
          `INSERT INTO newsletters (subject, template_path, from_address, status, scheduled_at, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id`,
          [
            input.subject,
            input.templatePath,
            input.from,
            input.scheduledAt === null ? 'draft' : 'scheduled',
            input.scheduledAt,
            now,
          ],
        )
      ).rows;
      const newsletterId = created!.id;
      await sql.query(
        `INSERT INTO newsletter_lists (newsletter_id, list_id)
         SELECT $1, list_id FROM unnest($2::bigint[]) AS list_id ON CONFLICT DO NOTHING`,
        [newsletterId, listIds],
      );
      return newsletterId;
    });
    return (await this.getNewsletter(id)) as Newsletter;
  }

  async getNewsletter(id: number): Promise<Newsletter | null> {
    const [row] = await this.rows<NewsletterRow>(`${NEWSLETTER_SELECT} WHERE n.id = $1`, [id]);
    return row ? toNewsletter(row) : null;
  }

  async listNewsletters(): Promise<Newsletter[]> {
    return (await this.rows<NewsletterRow>(`${NEWSLETTER_SELECT} ORDER BY n.id`)).map(toNewsletter);
  }

  async scheduleNewsletter(id: number, at: Millis, now: Millis) {
    return this.transition(id, ['draft', 'scheduled'], async (sql) => {
      await sql.query(
        "UPDATE newsletters SET status = 'scheduled', scheduled_at = $1, updated_at = $2 WHERE id = $3",
        [at, now, id],
      );
    });
  }

  async cancelNewsletter(id: number, now: Millis) {
    return this.transition(id, ['draft', 'scheduled', 'sending'], async (sql) => {
      await sql.query(
        "UPDATE newsletters SET status = 'cancelled', updated_at = $1, finished_at = $1 WHERE id = $2",
        [now, id],
      );
      // Rows waiting for a retry will never be claimed now: record why. Rows a live run holds
      // (`claimed`) are left for that run, which writes them final (recordOutcomes, endRun: a
      // 4xx or a row never handed over becomes `skipped`, "cancelled"); recipients never claimed
      // stay unclaimed. Runs recording outcomes hold this row FOR SHARE, so none of their `retry`
      // writes can slip in after this statement.
      await sql.query(
        `UPDATE deliveries SET state = 'skipped', reason = $3, next_attempt_at = NULL, updated_at = $1
         WHERE newsletter_id = $2 AND state = 'retry'`,
        [now, id, LEDGER_REASON.cancelled],
      );
    });
  }

  /**
   * A status change checked and made in one transaction. FOR UPDATE waits for claims in flight
   * (they hold the newsletter FOR SHARE), so a cancel is never overtaken by a claim that read
   * `sending` before it.
   */
  private transition(
    id: number,
    from: string[],
    apply: (sql: Sql) => Promise<void>,
  ): Promise<{ ok: true } | { ok: false; status: NewsletterStatus }> {
    return this.tx(async (sql) => {
      const [row] = (
        await sql.query<{ status: string }>('SELECT status FROM newsletters WHERE id = $1 FOR UPDATE', [id])
      ).rows;
      if (!row)
        throw new InputError(`There is no newsletter ${id}.`, ['See them all with `newsletter list`.']);
      if (!from.includes(row.status)) return { ok: false as const, status: row.status as NewsletterStatus };
      await apply(sql);
      return { ok: true as const };
    });
  }

  async counts(newsletterId: number): Promise<DeliveryCounts> {
    // One statement, so one snapshot: the states and the pending count add up to the audience
    // even while other hosts claim. `pending` is 0 once the newsletter is sent or failed.
    const [row] = await this.rows<{ states: Record<DeliveryState, number> | null; pending: number }>(
      `WITH nl AS (SELECT status, finished_at FROM newsletters WHERE id = $1)
       SELECT
         (SELECT json_object_agg(state, n) FROM
            (SELECT state, count(*) AS n FROM deliveries WHERE newsletter_id = $1 GROUP BY state) x) AS states,
         CASE WHEN coalesce((SELECT status FROM nl), 'sent') IN ('sent', 'failed')
                   OR (SELECT status = 'sending' AND finished_at IS NOT NULL FROM nl) THEN 0
              ELSE (SELECT count(*) FROM subscribers s WHERE ${inAudience('$1')}
                      AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.newsletter_id = $1 AND d.address = s.address))
         END AS pending`,
      [newsletterId],
    );
    const counts: DeliveryCounts = {
      audience: 0,
      pending: row?.pending ?? 0,
      claimed: 0,
      sent: 0,
      failed: 0,
      retry: 0,
      unknown: 0,
      skipped: 0,
    };
    for (const [state, n] of Object.entries(row?.states ?? {})) counts[state as DeliveryState] = Number(n);
    counts.audience =
      counts.pending +
      counts.claimed +
      counts.sent +
      counts.failed +
      counts.retry +
      counts.unknown +
      counts.skipped;
    return counts;
  }

  async deliveries(
    newsletterId: number,
    filter: { state?: DeliveryState; limit: number },
  ): Promise<Delivery[]> {
    const rows = filter.state
      ? await this.rows<DeliveryRow>(
          'SELECT * FROM deliveries WHERE newsletter_id = $1 AND state = $2 ORDER BY id LIMIT $3',
          [newsletterId, filter.state, filter.limit],
        )
      : await this.rows<DeliveryRow>(
          'SELECT * FROM deliveries WHERE newsletter_id = $1 ORDER BY id LIMIT $2',
          [newsletterId, filter.limit],
        );
    return rows.map(toDelivery);
  }

  // ---- runs and leases -----------------------------------------------------------------------

  async registerRun(registration: RunRegistration): Promise<RunInfo> {
    return this.tx(async (sql) => {
      await this.checkClock(sql, registration.leaseMs);
      const [row] = (
        await sql.query<RunRow>(
          `INSERT INTO runs (host_id, hostname, pid, started_at, lease_until) VALUES ($1, $2, $3, $4, $5)
           RETURNING *`,
          [
            registration.hostId,
            registration.hostname,
            registration.pid,
            registration.now,
            registration.now + registration.leaseMs,
          ],
        )
      ).rows;
      return toRun(row!);
    });
  }

  /**
   * Refuses a run on a host whose wall clock is too far from the database server's (see the
   * comment at the top and `clockTolerance`). Measured with this host's real clock, never with the
   * `now` the caller passes (tests move that on purpose).
   */
  private async checkClock(sql: Sql, leaseMs: number): Promise<void> {
    const before = Date.now();
    const [row] = (
      await sql.query<{ ms: number }>('SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms')
    ).rows;
    const after = Date.now();
    const skew = row!.ms - (before + after) / 2;
    const tolerance = clockTolerance(leaseMs);
    if (Math.abs(skew) - (after - before) / 2 <= tolerance) return;
    const seconds = (Math.abs(skew) / 1000).toFixed(1);
    throw new DatabaseError(
      `This host's clock is ${seconds} s ${skew > 0 ? 'behind' : 'ahead of'} the database server's: refusing to start a run.`,
      [
        `Runs on several hosts share leases in wall-clock time; their clocks must agree within ${(tolerance / 1000).toFixed(1)} s (a fraction of NEWSLETTER_LEASE).`,
        'Synchronise the clock of this host (and of the database server) with NTP, e.g. chrony or systemd-timesyncd.',
      ],
    );
  }

  async renewLease(runId: number, now: Millis, leaseMs: number): Promise<boolean> {
    // A run that another run has ended (its lease had expired) cannot bring itself back: the
    // `ended_at IS NULL` condition is what makes a lost lease final. The row lock orders this
    // against expireRuns: whichever commits first wins, the other sees its result.
    const result = await this.one('UPDATE runs SET lease_until = $1 WHERE id = $2 AND ended_at IS NULL', [
      now + leaseMs,
      runId,
    ]);
    return result.rowCount === 1;
  }

  async liveRuns(): Promise<RunInfo[]> {
    return (await this.rows<RunRow>('SELECT * FROM runs WHERE ended_at IS NULL ORDER BY id')).map(toRun);
  }

  async expireRuns(now: Millis, deadRunIds: number[]): Promise<ExpiredRuns> {
    return this.tx(async (sql) => {
      // FOR UPDATE first, then the ledger: a run that is claiming or recording right now holds its
      // own row FOR SHARE (claim.ts, recordOutcomes), so it is skipped here rather than waited
      // for; it is alive, and the next run looks again. A run whose lease was renewed while we
      // waited no longer matches. Every run processes its rows in this order (run row, then
      // its deliveries), so two hosts expiring at once cannot deadlock.
      const expired = (
        await sql.query<{ id: number }>(
          `SELECT id FROM runs WHERE ended_at IS NULL AND (lease_until < $1 OR id = ANY($2::bigint[]))
           ORDER BY id FOR UPDATE SKIP LOCKED`,
          [now, deadRunIds],
        )
      ).rows.map((row) => row.id);
      if (expired.length === 0) return { runs: 0, unknown: 0, ...(await heal(sql, now)) };
      // Claimed rows of a run that is gone: the message may or may not have been handed over.
      // `unknown` is never resent on its own (promise 1); an operator settles it (reconcile).
      const lost = (
        await sql.query<{ run_id: number; n: number }>(
          `WITH gone AS (
             UPDATE deliveries SET state = 'unknown', updated_at = $1, reason = $3
             WHERE run_id = ANY($2::bigint[]) AND state = 'claimed'
             RETURNING run_id)
           SELECT run_id, count(*) AS n FROM gone GROUP BY run_id`,
          [now, expired, LEDGER_REASON.runGone],
        )
      ).rows;
      const unknownOf = new Map(lost.map((row) => [row.run_id, row.n]));
      await sql.query(
        `UPDATE runs SET ended_at = $1, outcome = 'lost', unknown = runs.unknown + x.n,
           error = 'lease expired or process gone; its claims became unknown'
         FROM unnest($2::bigint[], $3::integer[]) AS x(id, n) WHERE runs.id = x.id`,
        [now, expired, expired.map((id) => unknownOf.get(id) ?? 0)],
      );
      return {
        runs: expired.length,
        unknown: lost.reduce((sum, row) => sum + row.n, 0),
        ...(await heal(sql, now)),
      };
    });
  }

  async endRun(runId: number, end: RunEnd, now: Millis): Promise<RunSettlement> {
    return this.tx(async (sql) => {
      // The run's own row FOR UPDATE first, as expireRuns takes it: of an expiry on another host
      // and this end, one waits for the other and then sees its result.
      const [run] = (
        await sql.query<{ ended_at: number | null }>('SELECT ended_at FROM runs WHERE id = $1 FOR UPDATE', [
          runId,
        ])
      ).rows;
      const settlement: RunSettlement = { settled: false, recorded: emptyTally(), unknown: 0, released: 0 };
      if (run && run.ended_at === null) {
        settlement.settled = true;
        settlement.recorded = (await recordOutcomesIn(sql, runId, end.outcomes, now)).recorded;
        settlement.unknown = (
          await sql.query(
            `UPDATE deliveries SET state = 'unknown', reason = $1, updated_at = $2
             WHERE run_id = $3 AND state = 'claimed' AND id = ANY($4::bigint[])`,
            [LEDGER_REASON.endedBeforeRecording, now, runId, end.handedOver],
          )
        ).rowCount;
        settlement.released = await releaseIn(sql, runId, null, now);
      }
      const counts = end.counts;
      const recorded = settlement.recorded;
      await sql.query(
        `UPDATE runs SET ended_at = coalesce(ended_at, $1),
           outcome = CASE WHEN ended_at IS NULL THEN $2 ELSE outcome END,
           sent = $3, failed = $4, retry = $5, unknown = unknown + $6, skipped = $7, error = coalesce(error, $8)
         WHERE id = $9`,
        [
          now,
          end.outcome,
          counts.sent + recorded.sent,
          counts.failed + recorded.failed,
          counts.retry + recorded.retry,
          counts.unknown + recorded.unknown + settlement.unknown,
          counts.skipped + recorded.skipped,
          end.error,
          runId,
        ],
      );
      return settlement;
    });
  }

  async listRuns(limit: number): Promise<RunInfo[]> {
    return (await this.rows<RunRow>('SELECT * FROM runs ORDER BY id DESC LIMIT $1', [limit])).map(toRun);
  }

  // ---- the send pipeline ---------------------------------------------------------------------

  async dueNewsletters(now: Millis): Promise<Newsletter[]> {
    return (
      await this.rows<NewsletterRow>(
        `${NEWSLETTER_SELECT} WHERE n.status = 'scheduled' AND n.scheduled_at <= $1 ORDER BY n.scheduled_at, n.id`,
        [now],
      )
    ).map(toNewsletter);
  }

  async beginSending(
    read: NewsletterAsRead,
    body: VerifiedBody,
    runId: number,
    now: Millis,
  ): Promise<boolean> {
    // Compare-and-set: the body and the status change land together or not at all. Of two runs
    // (on any hosts) the second waits for the first's row lock, re-reads the row, finds it no
    // longer `scheduled` and changes nothing. The row must also be what the build read: a
    // `schedule --at LATER` made meanwhile wins.
    const result = await this.one(
      `UPDATE newsletters SET status = 'sending', body = $1::jsonb, started_at = $2, started_by_run = $3, updated_at = $2
       WHERE id = $4 AND status = 'scheduled' AND scheduled_at IS NOT DISTINCT FROM $5 AND updated_at = $6`,
      [JSON.stringify(body), now, runId, read.id, read.scheduledAt, read.updatedAt],
    );
    return result.rowCount === 1;
  }

  async markBuildFailed(read: NewsletterAsRead, reason: string, now: Millis): Promise<boolean> {
    const result = await this.one(
      `UPDATE newsletters SET status = 'failed', failure_reason = $1, finished_at = $2, updated_at = $2
       WHERE id = $3 AND status = 'scheduled' AND scheduled_at IS NOT DISTINCT FROM $4 AND updated_at = $5`,
      [reason, now, read.id, read.scheduledAt, read.updatedAt],
    );
    return result.rowCount === 1;
  }

  async sendingNewsletters(): Promise<Newsletter[]> {
    return (
      await this.rows<NewsletterRow>(`${NEWSLETTER_SELECT} WHERE n.status = 'sending' ORDER BY n.id`)
    ).map(toNewsletter);
  }

  async claimBatch(request: ClaimRequest): Promise<ClaimResult> {
    return this.tx((sql) => claimBatch(sql, request));
  }

  async recordOutcomes(runId: number, writes: OutcomeWrite[], now: Millis): Promise<RecordedOutcomes> {
    if (writes.length === 0) return { applied: 0, refused: 0, recorded: emptyTally() };
    return this.tx(async (sql) => {
      // The run's row FOR SHARE first, as claims do: expireRuns skips a run that is recording, so
      // the two never take the same delivery rows in different orders.
      await sql.query('SELECT 1 FROM runs WHERE id = $1 FOR SHARE', [runId]);
      return recordOutcomesIn(sql, runId, writes, now);
    });
  }

  async releaseClaims(runId: number, deliveryIds: number[], now: Millis): Promise<number> {
    if (deliveryIds.length === 0) return 0;
    return this.tx(async (sql) => {
      await sql.query('SELECT 1 FROM runs WHERE id = $1 FOR SHARE', [runId]);
      return releaseIn(sql, runId, deliveryIds, now);
    });
  }

  async completeIfDone(newsletterId: number, now: Millis): Promise<boolean> {
    // Completion is read from the ledger, never from a counter: nobody left to claim, and no row
    // still claimed or waiting for a retry. One statement, one snapshot: a claim committed by
    // another host is either visible as `claimed` or its recipients are still pending, never
    // neither. (Two statements could see the pending recipients already claimed, but not the
    // claims.)
    const result = await this.one(
      `UPDATE newsletters SET status = 'sent', finished_at = $2, updated_at = $2
       WHERE id = $1 AND status = 'sending'
         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.newsletter_id = $1 AND d.state IN ('claimed', 'retry'))
         -- finished_at set: reopened by reconcile --resend, its audience is closed
         AND (finished_at IS NOT NULL
              OR NOT EXISTS (SELECT 1 FROM subscribers s WHERE ${inAudience('$1')}
                               AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.newsletter_id = $1 AND d.address = s.address)))`,
      [newsletterId, now],
    );
    return result.rowCount === 1;
  }

  // ---- the hourly quota ------------------------------------------------------------------------

  async reserveQuota(
    account: string,
    windowStart: Millis,
    wanted: number,
    limit: number,
    now: Millis,
  ): Promise<number> {
    // Runs on every host reserve from the same row, so the read and the add must not interleave.
    // The upsert takes the hour's row lock whether it inserts the row or finds it (DO UPDATE
    // locks, and a concurrent insert of the same key waits for ours), and its RETURNING reads
    // the newest committed `used`, never an older snapshot. The grant is decided under that lock
    // and added before COMMIT releases it: reservations queue on one row, briefly, and never add
    // up past the limit.
    // Why not one statement: ON CONFLICT … DO UPDATE … RETURNING shows only the new `used`, and
    // the grant needs the old one too (RETURNING old.* exists only from PostgreSQL 18).
    return this.tx(async (sql) => {
      const [row] = (
        await sql.query<{ used: number }>(
          `INSERT INTO quota_usage AS q (account, window_start, used, updated_at) VALUES ($1, $2, 0, $3)
           ON CONFLICT (account, window_start) DO UPDATE SET updated_at = excluded.updated_at
           RETURNING q.used`,
          [account, windowStart, now],
        )
      ).rows;
      const granted = quotaGrant(row!.used, wanted, limit);
      if (granted > 0) {
        await sql.query('UPDATE quota_usage SET used = used + $1 WHERE account = $2 AND window_start = $3', [
          granted,
          account,
          windowStart,
        ]);
      }
      return granted;
    });
  }

  async releaseQuota(account: string, windowStart: Millis, count: number, now: Millis): Promise<void> {
    if (count <= 0) return;
    // One statement: the row lock orders it against reservations in flight.
    await this.one(
      `UPDATE quota_usage SET used = greatest(used - $1, 0), updated_at = $2
       WHERE account = $3 AND window_start = $4`,
      [count, now, account, windowStart],
    );
  }

  async quotaUsed(account: string, windowStart: Millis): Promise<number> {
    const [row] = await this.rows<{ used: number }>(
      'SELECT used FROM quota_usage WHERE account = $1 AND window_start = $2',
      [account, windowStart],
    );
    return row?.used ?? 0;
  }

  // ---- dry run and operators -----------------------------------------------------------------

  async pendingRecipients(
    newsletterId: number | null,
    lists: string[],
    afterSubscriberId: number,
    limit: number,
  ): Promise<PendingRecipient[]> {
    const rows = await this.rows<ClaimCandidate>(
      `SELECT s.id AS subscriber_id, s.email, s.address, s.name, s.fields, s.status, sup.reason AS suppressed
       FROM subscribers s LEFT JOIN suppressions sup ON sup.address = s.address
       WHERE s.id > $1
         AND EXISTS (SELECT 1 FROM memberships m JOIN lists l ON l.id = m.list_id
                     WHERE m.subscriber_id = s.id AND l.name = ANY($2::text[]))
         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.newsletter_id = $3 AND d.address = s.address)
       ORDER BY s.id LIMIT $4`,
      [afterSubscriberId, lists, newsletterId ?? -1, limit],
    );
    return rows.map((row) => ({
      newsletterId: newsletterId ?? 0,
      subscriberId: row.subscriber_id,
      email: row.email ?? row.address,
      address: row.address,
      name: row.name ?? '',
      fields: row.fields ?? {},
      skipReason: reasonToSkip(row),
    }));
  }

  async strandedClaims(): Promise<StrandedClaims[]> {
    return this.rows<StrandedClaims>(
      `SELECT d.newsletter_id AS "newsletterId", count(*) AS count FROM deliveries d
       WHERE ${strandedClaim('d')} GROUP BY d.newsletter_id ORDER BY d.newsletter_id`,
    );
  }

  async reconcile(
    newsletterId: number,
    action: ReconcileAction,
    addresses: string[] | null,
    now: Millis,
  ): Promise<ReconcileResult> {
    return this.tx(async (sql) => {
      // The newsletter FOR UPDATE: a cancel (or a completion) waits for this reconcile, and the
      // status read here is the one the retry rows and the refusal are decided on. Claims hold
      // it FOR SHARE, so none is in flight while the rows change.
      const [newsletter] = (
        await sql.query<{ status: NewsletterStatus }>(
          'SELECT status FROM newsletters WHERE id = $1 FOR UPDATE',
          [newsletterId],
        )
      ).rows;
      if (!newsletter)
        throw new InputError(`There is no newsletter ${newsletterId}.`, [
          'See them all with `newsletter list`.',
        ]);
      const plan = planReconcile(newsletter.status, action);
      const targets =
        addresses ??
        (
          await sql.query<{ address: string }>(
            `SELECT address FROM deliveries
             WHERE newsletter_id = $1 AND (state = 'unknown' OR ${strandedClaim('deliveries')}) ORDER BY id`,
            [newsletterId],
          )
        ).rows.map((r) => r.address);
      // Only unknown and stranded rows can be settled: an operator cannot turn a `sent` into a
      // resend, nor take a row from a live run. The state conditions are the fence.
      const settle = (state: string) =>
        action === 'mark-sent'
          ? `UPDATE deliveries SET state = 'sent', reason = $1, updated_at = $2
             WHERE newsletter_id = $3 AND address = $4 AND ${state}`
          : `UPDATE deliveries SET state = 'retry', next_attempt_at = $2, reason = $1, updated_at = $2
             WHERE newsletter_id = $3 AND address = $4 AND ${state}`;
      const reason = action === 'mark-sent' ? MARKED_SENT_REASON : RESEND_REASON;
      const settleUnknown = settle("state = 'unknown'");
      const settleStranded = settle(strandedClaim('deliveries'));
      const result: ReconcileResult = {
        changed: 0,
        stranded: 0,
        notUnknown: [],
        claimedByLiveRun: [],
        cancelledRetries: 0,
        refused: plan.refused,
      };
      for (const address of targets) {
        const values = [reason, now, newsletterId, address];
        if (plan.settle) {
          if ((await sql.query(settleUnknown, values)).rowCount > 0) {
            result.changed += 1;
            continue;
          }
          if ((await sql.query(settleStranded, values)).rowCount > 0) {
            result.changed += 1;
            result.stranded += 1;
            continue;
          }
        } else {
          const held = await sql.query(
            `SELECT 1 FROM deliveries WHERE newsletter_id = $1 AND address = $2
               AND (state = 'unknown' OR ${strandedClaim('deliveries')})`,
            [newsletterId, address],
          );
          if (held.rowCount > 0) continue; // held by the refusal, which the result carries
        }
        result.notUnknown.push(address);
        const live = await sql.query(
          `SELECT 1 FROM deliveries d JOIN runs r ON r.id = d.run_id
           WHERE d.newsletter_id = $1 AND d.address = $2 AND d.state = 'claimed' AND r.ended_at IS NULL`,
          [newsletterId, address],
        );
        if (live.rowCount > 0) result.claimedByLiveRun.push(address);
      }
      // The retry rows last, in the same order as the repair at a run's start (stranded rows, then
      // retries), so that the two never wait for each other's rows the other way round.
      if (plan.skipRetries) {
        const skipped = await sql.query<{ address: string }>(
          `UPDATE deliveries SET state = 'skipped', reason = $1, next_attempt_at = NULL, updated_at = $2
           WHERE newsletter_id = $3 AND state = 'retry' RETURNING address`,
          [LEDGER_REASON.cancelled, now, newsletterId],
        );
        result.cancelledRetries = skipped.rowCount;
        dropSettled(result, new Set(skipped.rows.map((r) => r.address)));
      }
      if (action === 'resend' && result.changed > 0) {
        // A `sent` newsletter whose unknowns are resent goes back to `sending` so that runs pick it up.
        // finished_at stays set: its audience is closed, so only these rows go out again.
        await sql.query(
          "UPDATE newsletters SET status = 'sending', updated_at = $1 WHERE id = $2 AND status = 'sent'",
          [now, newsletterId],
        );
      }
      await sql.query('INSERT INTO events (at, kind, detail) VALUES ($1, $2, $3::jsonb)', [
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
      ]);
      return result;
    });
  }

  async suppress(address: string, reason: string, source: string, now: Millis): Promise<void> {
    await this.one(
      `INSERT INTO suppressions (address, reason, source, created_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (address) DO NOTHING`,
      [address, reason, source, now],
    );
  }

  // ---- suppressions and bounces ------------------------------------------------------------

  async suppressMany(
    entries: readonly { address: string; reason: string }[],
    source: string,
    now: Millis,
  ): Promise<{ added: number }> {
    return this.tx(async (sql) => {
      let added = 0;
      for (let i = 0; i < entries.length; i += IMPORT_BATCH) {
        const batch = entries.slice(i, i + IMPORT_BATCH);
        // DISTINCT ON: the same address twice in one statement would be an error with ON CONFLICT.
        const result = await sql.query(
          `INSERT INTO suppressions (address, reason, source, created_at)
           SELECT DISTINCT ON (u.address) u.address, u.reason, $3, $4
           FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS u(address, reason, ord)
           ORDER BY u.address, u.ord
           ON CONFLICT (address) DO NOTHING`,
          [batch.map((e) => e.address), batch.map((e) => e.reason), source, now],
        );
        added += result.rowCount;
      }
      return { added };
    });
  }

  async unsuppress(address: string, now: Millis): Promise<boolean> {
    return this.tx(async (sql) => {
      await sql.query(
        "UPDATE bounce_events SET cleared_at = $2 WHERE address = $1 AND kind = 'soft' AND cleared_at IS NULL",
        [address, now],
      );
      return (await sql.query('DELETE FROM suppressions WHERE address = $1', [address])).rowCount === 1;
    });
  }

  async listSuppressions(filter: { afterAddress: string | null; limit: number }): Promise<Suppression[]> {
    const rows = await this.rows<{ address: string; reason: string; source: string; created_at: number }>(
      `SELECT address, reason, source, created_at FROM suppressions
       WHERE address COLLATE "C" > $1 ORDER BY address COLLATE "C" LIMIT $2`,
      [filter.afterAddress ?? '', filter.limit],
    );
    return rows.map((r) => ({
      address: r.address,
      reason: r.reason,
      source: r.source,
      createdAt: r.created_at,
    }));
  }

  async recordBounce(event: BounceEvent, options: { softLimit: number; now: Millis }): Promise<BounceResult> {
    const { now, softLimit } = options;
    return this.tx(async (sql): Promise<BounceResult> => {
      // Two hosts importing soft bounces of one address at once would each count only its own
      // uncommitted row and neither reach the limit: one address's bounces are counted in turn.
      await sql.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`bounce:${event.address}`]);
      const inserted = await sql.query(
        `INSERT INTO bounce_events (dsn_id, address, kind, status, reason, at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (dsn_id, address) DO NOTHING`,
        [event.dsnId, event.address, event.kind, event.status, event.reason, now],
      );
      if (inserted.rowCount === 0) return { recorded: false, suppressed: false, softCount: 0 };
      let softCount = 0;
      if (event.kind === 'soft') {
        const [row] = (
          await sql.query<{ n: number }>(
            "SELECT count(*)::int AS n FROM bounce_events WHERE address = $1 AND kind = 'soft' AND cleared_at IS NULL",
            [event.address],
          )
        ).rows;
        softCount = row?.n ?? 0;
        if (softCount < softLimit) return { recorded: true, suppressed: false, softCount };
      }
      const suppressed = await sql.query(
        `INSERT INTO suppressions (address, reason, source, created_at) VALUES ($1, $2, 'bounce', $3)
         ON CONFLICT (address) DO NOTHING`,
        [event.address, bounceSuppressionReason(event, softCount), now],
      );
      return { recorded: true, suppressed: suppressed.rowCount === 1, softCount };
    });
  }
}

// ---- import helpers (inside the caller's transaction) -----------------------------------------

/**
 * The fenced outcome writes, in the caller's transaction (which holds the run's row). The
 * newsletters of the rows are held FOR SHARE first: a cancel (FOR UPDATE) either commits before,
 * and a `retry` is then written `skipped`, or waits until these writes are in, and then sees them.
 */
async function recordOutcomesIn(
  sql: Sql,
  runId: number,
  writes: OutcomeWrite[],
  now: Millis,
): Promise<RecordedOutcomes> {
  if (writes.length === 0) return { applied: 0, refused: 0, recorded: emptyTally() };
  const ids = writes.map((write) => write.deliveryId);
  await sql.query(
    `SELECT 1 FROM newsletters WHERE id IN (SELECT newsletter_id FROM deliveries WHERE id = ANY($1::bigint[]))
     ORDER BY id FOR SHARE`,
    [ids],
  );
  // The fence: a row changes only while it is still `claimed` by this very run. A run whose
  // lease expired finds its rows `unknown` (or re-claimed by another run) and changes nothing.
  // One statement for the whole batch: a round trip per row cost more than the writes.
  const updated = await sql.query<{ id: string | number }>(
    `UPDATE deliveries d
        SET state = w.state, attempts = w.attempts, next_attempt_at = w.next_attempt_at,
            smtp_reply = w.smtp_reply, queue_id = w.queue_id, reason = w.reason, updated_at = $2
       FROM unnest($3::bigint[], $4::text[], $5::integer[], $6::bigint[], $7::text[], $8::text[], $9::text[])
            AS w(id, state, attempts, next_attempt_at, smtp_reply, queue_id, reason)
      WHERE d.id = w.id AND d.run_id = $1 AND d.state = 'claimed'
      RETURNING d.id`,
    [
      runId,
      now,
      ids,
      writes.map((write) => write.state),
      writes.map((write) => write.attempts),
      writes.map((write) => write.nextAttemptAt),
      writes.map((write) => write.smtpReply),
      writes.map((write) => write.queueId),
      writes.map((write) => (write.state === 'failed' || write.state === 'unknown' ? write.smtpReply : null)),
    ],
  );
  const appliedIds = new Set(updated.rows.map((row) => Number(row.id)));
  const applied = writes.filter((write) => appliedIds.has(write.deliveryId));
  const suppress = applied.filter((write) => write.suppressAddress);
  if (suppress.length > 0) {
    await sql.query(
      `INSERT INTO suppressions (address, reason, source, created_at)
       SELECT a.address, a.reason, 'smtp', $3 FROM unnest($1::text[], $2::text[]) AS a(address, reason)
       ON CONFLICT (address) DO NOTHING`,
      [
        suppress.map((write) => write.suppressAddress?.address),
        suppress.map((write) => write.suppressAddress?.reason),
        now,
      ],
    );
  }
  // A 4xx of a newsletter cancelled meanwhile would wait for a claim that never comes: final now.
  const retried = applied.filter((write) => write.state === 'retry').map((write) => write.deliveryId);
  const cancelled =
    retried.length === 0
      ? 0
      : (
          await sql.query(
            `UPDATE deliveries SET state = 'skipped', reason = $1, next_attempt_at = NULL, updated_at = $2
             WHERE state = 'retry' AND id = ANY($3::bigint[]) AND ${IS_CANCELLED}`,
            [LEDGER_REASON.cancelled, now, retried],
          )
        ).rowCount;
  return {
    applied: applied.length,
    refused: writes.length - applied.length,
    recorded: tallyWrites(applied, cancelled),
  };
}

/**
 * Rows the run holds and never handed over (all of them when `deliveryIds` is null): back to
 * `retry`, due now, attempts unchanged; `skipped`, "cancelled", for a cancelled newsletter.
 */
async function releaseIn(
  sql: Sql,
  runId: number,
  deliveryIds: number[] | null,
  now: Millis,
): Promise<number> {
  const result = await sql.query(
    `UPDATE deliveries SET
       state = CASE WHEN ${IS_CANCELLED} THEN 'skipped' ELSE 'retry' END,
       reason = CASE WHEN ${IS_CANCELLED} THEN $1 ELSE reason END,
       next_attempt_at = CASE WHEN ${IS_CANCELLED} THEN NULL ELSE $2::bigint END,
       updated_at = $2::bigint
     WHERE run_id = $3 AND state = 'claimed' AND ($4::bigint[] IS NULL OR id = ANY($4::bigint[]))`,
    [LEDGER_REASON.cancelled, now, runId, deliveryIds],
  );
  return result.rowCount;
}

/** See SqliteStore.healNow: what older versions could leave behind, settled at a run's start. */
async function heal(sql: Sql, now: Millis): Promise<{ stranded: number; cancelledRetries: number }> {
  const stranded = await sql.query(
    `UPDATE deliveries SET state = 'unknown', updated_at = $1, reason = $2
     WHERE ${strandedClaim('deliveries')}`,
    [now, LEDGER_REASON.stranded],
  );
  const cancelled = await sql.query(
    `UPDATE deliveries SET state = 'skipped', reason = $1, next_attempt_at = NULL, updated_at = $2
     WHERE state = 'retry' AND newsletter_id IN (SELECT id FROM newsletters WHERE status = 'cancelled')`,
    [LEDGER_REASON.cancelled, now],
  );
  return { stranded: stranded.rowCount, cancelledRetries: cancelled.rowCount };
}

/**
 * Insert or update by normalised address, in one statement per batch (no address twice in a
 * batch). An import never re-subscribes someone who left: `status` is not touched. New fields
 * are merged over the old ones (`||`), as the SQLite store does. `xmax = 0` is true exactly for
 * the rows this statement inserted (an updated row carries this transaction's id in xmax).
 */
async function upsertSubscribers(
  sql: Sql,
  inputs: SubscriberInput[],
  now: Millis,
): Promise<{ created: number; ids: number[] }> {
  const rows = (
    await sql.query<{ id: number; created: boolean }>(
      `INSERT INTO subscribers AS s (email, address, name, fields, created_at, updated_at)
       SELECT u.email, u.address, u.name, u.fields::jsonb, $5, $5
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS u(email, address, name, fields, ord)
       ORDER BY u.ord
       ON CONFLICT (address) DO UPDATE
         SET email = excluded.email, name = excluded.name, fields = s.fields || excluded.fields,
             updated_at = excluded.updated_at
       RETURNING s.id, (s.xmax = 0) AS created`,
      [
        inputs.map((i) => i.email),
        inputs.map((i) => i.address),
        inputs.map((i) => i.name),
        inputs.map((i) => JSON.stringify(i.fields)),
        now,
      ],
    )
  ).rows;
  return { created: rows.filter((r) => r.created).length, ids: rows.map((r) => r.id) };
}

async function addMemberships(
  sql: Sql,
  listId: number,
  subscriberIds: number[],
  now: Millis,
): Promise<number> {
  if (subscriberIds.length === 0) return 0;
  const result = await sql.query(
    `INSERT INTO memberships (list_id, subscriber_id, created_at)
     SELECT $1, subscriber_id, $3 FROM unnest($2::bigint[]) AS subscriber_id
     ON CONFLICT DO NOTHING`,
    [listId, subscriberIds, now],
  );
  return result.rowCount;
}
