/**
 * `migrate-db` copies the hourly quota's count (src/store/copy.ts): a move from one SQLite host
 * to several PostgreSQL hosts in the middle of an hour must not hand the account a fresh quota.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { copySqliteToPostgres } from '../../src/store/copy.js';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { describePostgres, type PgCluster, sharedCluster, stopSharedCluster } from '../helpers/postgres.js';
import { BUSY_TIMEOUT_MS } from '../helpers/store-fixtures.js';

const HOUR = 3_600_000;

describePostgres('migrate-db copies the hourly quota', () => {
  let cluster: PgCluster;
  let dir: string;

  beforeAll(async () => {
    cluster = await sharedCluster();
    dir = mkdtempSync(join(tmpdir(), 'newsletter-quota-copy-'));
  });

  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await stopSharedCluster();
  });

  it('the hour in progress (and the hours before) carry on in PostgreSQL', async () => {
    const now = Date.now();
    const hour = Math.floor(now / HOUR) * HOUR;
    const file = join(dir, 'newsletter.db');
    const source = SqliteStore.open(file, { create: true, readonly: false, busyTimeoutMs: BUSY_TIMEOUT_MS });
    await source.migrate();
    expect(await source.reserveQuota('news@smtp.example.org', hour - HOUR, 50, 50, now - HOUR)).toBe(50);
    expect(await source.reserveQuota('news@smtp.example.org', hour, 20, 50, now)).toBe(20);
    await source.close();

    const database = await cluster.createDatabase('quotacopy');
    try {
      const report = await copySqliteToPostgres({
        sqlitePath: file,
        busyTimeoutMs: BUSY_TIMEOUT_MS,
        postgresUrl: database.url,
        targetDescription: 'the test database',
        now,
      });
      expect(report.tables.find((t) => t.name === 'quota_usage')).toEqual({
        name: 'quota_usage',
        source: 2,
        target: 2,
      });
      const target = await PostgresStore.open(database.url, { readonly: false });
      try {
        expect(await target.quotaUsed('news@smtp.example.org', hour)).toBe(20);
        expect(await target.quotaUsed('news@smtp.example.org', hour - HOUR)).toBe(50);
        expect(await target.reserveQuota('news@smtp.example.org', hour, 100, 50, now)).toBe(30);
      } finally {
        await target.close();
      }
    } finally {
      await database.drop();
    }
  });
});
