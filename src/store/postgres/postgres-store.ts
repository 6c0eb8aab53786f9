/**
 * The PostgreSQL Store: one database shared on purpose by every host that runs `send-due`. The
 * methods both databases implement alike come from ../dialect-methods.ts, each the function of its
 * name in this folder's files (src/store/README.md has the map); this class opens the pool and
 * writes the rest (schema and meta, the send path's claim and fenced writes, backup, footprint).
 * Same semantics as the SQLite store, with row locks where SQLite has its single write lock:
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
 * Session state: see connection.ts.
 */
import { type DialectFunctions, dialectStore } from '../dialect-methods.js';
import { backupNeedsPgDump } from '../../domain/backup.js';
import type { OutcomeWrite } from '../../domain/ledger.js';
import { describeDatabase } from '../../domain/database-location.js';
import type { Millis } from '../../domain/types.js';
import type { ClaimRequest } from '../../engine/store.js';
import type { Store } from '../store.js';
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
import * as prune from './prune.js';
import * as operators from './reconcile.js';
import * as sending from './sending.js';
import * as forget from './forget.js';
import * as subscribers from './subscribers.js';
import * as listsAndOptOuts from './lists.js';

export interface PostgresOpenOptions {
  /** --dry-run and read-only views: every statement runs in a READ ONLY transaction. */
  readonly: boolean;
  /**
   * Connections this process may hold. Two by default: the engine's calls come one at a time,
   * and the lease timer renews beside them. Twenty hosts then need at most forty.
   */
  maxConnections?: number;
}

/**
 * PostgreSQL's functions for the Store methods both databases implement alike (../dialect-methods.ts):
 * each module's function of the method's name, its connection first.
 */
const POSTGRES_FUNCTIONS: DialectFunctions<PgDb> = {
  ...subscribers,
  ...forget,
  ...listsAndOptOuts,
  ...newsletters,
  ...newsletterLife,
  ...audience,
  ...fieldGaps,
  ...lease,
  ...sending,
  ...quota,
  ...operators,
  ...prune,
  ...bounces,
  ...reports,
};

export class PostgresStore extends dialectStore(POSTGRES_FUNCTIONS) implements Store {
  readonly kind = 'postgres' as const;
  readonly url: string;
  private readonly pg: PgDb;

  private constructor(url: string, pg: PgDb) {
    super(pg);
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

  // ---- the send pipeline: sending.ts, claim.ts, fence.ts ----------------------------------------

  async claimBatch(request: ClaimRequest) {
    return claim.claimBatch(this.pg, request);
  }
  /** Claims go over the pool's connections: nothing to start. */
  prepareToClaim(): void {}
  async recordOutcomes(runId: number, writes: OutcomeWrite[], now: Millis) {
    return fence.recordOutcomes(this.pg, runId, writes, now);
  }
  async releaseClaims(runId: number, deliveryIds: number[], now: Millis) {
    return fence.releaseClaims(this.pg, runId, deliveryIds, now);
  }

  // ---- operators: hard-bounces.ts ---------------------------------------------------------------

  async hardBounces(newsletterId: number, limit: number) {
    return hardBounces(this.pg, newsletterId, limit);
  }

  // ---- upkeep: prune.ts, footprint.ts -----------------------------------------------------------

  /** A shared database is backed up by its server's tools, which see every host's writes. */
  async backup(_file: string): Promise<never> {
    throw backupNeedsPgDump(this.where);
  }
  async storageFootprint() {
    return storageFootprint(this.pg);
  }
}
