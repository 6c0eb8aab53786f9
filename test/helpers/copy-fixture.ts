/**
 * The setup the `migrate-db` copy tests (test/integration/*-copy.test.ts) share: a temporary
 * folder with a migrated SQLite file to fill, the shared PostgreSQL cluster, and the copy
 * (src/store/copy.ts) into a fresh database that is opened for the test's checks, then closed and
 * dropped. Call `copyFixture` inside a `describePostgres` body: it registers its beforeAll/afterAll.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import type { Millis } from '../../src/domain/types.js';
import { type CopyReport, copySqliteToPostgres } from '../../src/store/copy.js';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { type PgCluster, sharedCluster, stopSharedCluster } from './postgres.js';
import { BUSY_TIMEOUT_MS } from './store-fixtures.js';

export interface Copied {
  /** The copy, opened (read-only unless asked otherwise). */
  target: PostgresStore;
  report: CopyReport;
  /** The copy's database, for a check below the store's interface. */
  url: string;
}

export interface CopyFixture {
  /** A migrated SQLite store (a new newsletter.db in the test's folder), to fill and close. */
  openSqlite(): Promise<SqliteStore>;
  /**
   * Copies that file into a new database `name`, hands it to `check`, then closes and drops it
   * (whether or not `check` passed).
   */
  copy(
    name: string,
    now: Millis,
    check: (copied: Copied) => Promise<void>,
    options?: { readonly?: boolean },
  ): Promise<void>;
}

export function copyFixture(prefix: string): CopyFixture {
  let cluster: PgCluster;
  let dir: string;
  const file = (): string => join(dir, 'newsletter.db');

  beforeAll(async () => {
    cluster = await sharedCluster();
    dir = mkdtempSync(join(tmpdir(), prefix));
  });

  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await stopSharedCluster();
  });

  return {
    async openSqlite() {
      const source = SqliteStore.open(file(), {
        create: true,
        readonly: false,
        busyTimeoutMs: BUSY_TIMEOUT_MS,
      });
      await source.migrate();
      return source;
    },
    async copy(name, now, check, options = {}) {
      const database = await cluster.createDatabase(name);
      try {
        const report = await copySqliteToPostgres({
          sqlitePath: file(),
          busyTimeoutMs: BUSY_TIMEOUT_MS,
          postgresUrl: database.url,
          targetDescription: 'the test database',
          now,
        });
        const target = await PostgresStore.open(database.url, { readonly: options.readonly ?? true });
        try {
          await check({ target, report, url: database.url });
        } finally {
          await target.close();
        }
      } finally {
        await database.drop();
      }
    },
  };
}
