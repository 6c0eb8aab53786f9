/**
 * The SQLite Store: one database file on one host. The methods both databases implement alike
 * come from ../dialect-methods.ts, each the function of its name in this folder's files
 * (src/store/README.md has the map); this class opens the connection and writes what is SQLite's
 * own: schema and meta, the send path's claim and fenced writes (on the ledger thread in a fast
 * send-due), backups and the footprint.
 *
 * better-sqlite3 is synchronous; the async interface is kept so that the engine runs unchanged on
 * PostgreSQL. Every read-then-write runs in `BEGIN IMMEDIATE` (db.ts), which takes the database's
 * single write lock up front: two processes can never both read "not yet claimed" and then both
 * claim.
 */
import { type DialectFunctions, dialectStore } from '../dialect-methods.js';
import type Database from 'better-sqlite3';
import type { OutcomeWrite } from '../../domain/ledger.js';
import type { Millis } from '../../domain/types.js';
import type { ClaimRequest } from '../../engine/store.js';
import type { Store } from '../store.js';
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
import * as quota from './quota.js';
import * as reports from './reports.js';
import * as prune from './prune.js';
import * as operators from './reconcile.js';
import * as sending from './sending.js';
import * as forget from './forget.js';
import * as subscribers from './subscribers.js';
import { WalSync } from './wal-sync.js';
import * as listsAndOptOuts from './lists.js';

export interface StoreOpenOptions extends OpenOptions {
  /**
   * Claims and outcome writes on the ledger's own thread (ledger-thread.ts): `send-due` sets it.
   * The thread runs the built ledger-worker.js, so only code running from dist/ can set it.
   */
  ledgerThread?: boolean;
}

/**
 * SQLite's functions for the Store methods both databases implement alike (../dialect-methods.ts):
 * each module's function of the method's name, its connection first.
 */
const SQLITE_FUNCTIONS: DialectFunctions<SqliteDb> = {
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

export class SqliteStore extends dialectStore(SQLITE_FUNCTIONS) implements Store {
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
    const c = new SqliteDb(db);
    super(c);
    this.file = file;
    this.db = db;
    this.c = c;
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

  // ---- the send pipeline: sending.ts, claim.ts, fence.ts ----------------------------------------

  /** The ledger thread's connection settings, once a claim started it; null otherwise. */
  async ledgerSettings() {
    return this.ledger ? this.ledger.settings() : null;
  }

  prepareToClaim(): void {
    // Through started(), which lets go of the process once the thread is up: a worker unref'd
    // before it is online would keep a run that never claims alive (sqlite-ledger-thread.test.ts).
    void this.ledgerThread()?.started();
  }

  /** The ledger thread when the store claims on one, started on first use; else null. */
  private ledgerThread(): LedgerThread | null {
    if (!this.options.ledgerThread || this.options.readonly || this.ledgerUnavailable) return null;
    this.ledger ??= new LedgerThread({ file: this.file, busyTimeoutMs: this.options.busyTimeoutMs });
    return this.ledger;
  }

  async claimBatch(request: ClaimRequest) {
    const thread = this.ledgerThread();
    if (thread) {
      if (await thread.started()) return thread.claimBatch(request);
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

  // ---- operators: hard-bounces.ts ---------------------------------------------------------------

  async hardBounces(newsletterId: number, limit: number) {
    return hardBounces(this.c, newsletterId, limit);
  }

  // ---- upkeep: backup.ts, footprint.ts ------------------------------------------------

  async backup(file: string) {
    return backupSqlite(this.db, file);
  }
  async storageFootprint() {
    return storageFootprint(this.c);
  }
}
