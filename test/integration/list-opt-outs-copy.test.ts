/**
 * `migrate-db` copies issue 14's opt-outs (src/store/copy.ts): the per-list ones (list_opt_outs)
 * and how a global one was made (subscribers.unsubscribe_source). A move to PostgreSQL must not
 * bring anybody back to a list they left.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { copySqliteToPostgres } from '../../src/store/copy.js';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { describePostgres, type PgCluster, sharedCluster, stopSharedCluster } from '../helpers/postgres.js';
import { BUSY_TIMEOUT_MS, seedSubscribers } from '../helpers/store-fixtures.js';

describePostgres('migrate-db copies per-list opt-outs', () => {
  let cluster: PgCluster;
  let dir: string;

  beforeAll(async () => {
    cluster = await sharedCluster();
    dir = mkdtempSync(join(tmpdir(), 'newsletter-optout-copy-'));
  });

  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await stopSharedCluster();
  });

  it('list_opt_outs and unsubscribe_source arrive, and the audience still leaves them out', async () => {
    const now = Date.now();
    const file = join(dir, 'newsletter.db');
    const source = SqliteStore.open(file, { create: true, readonly: false, busyTimeoutMs: BUSY_TIMEOUT_MS });
    await source.migrate();
    await seedSubscribers(source, 'news', ['a@example.org', 'b@example.org', 'c@example.org'], now);
    await source.optOut(
      { address: 'a@example.org' },
      { kind: 'lists', lists: ['news'] },
      'one-click',
      now + 1,
    );
    await source.optOut({ address: 'b@example.org' }, { kind: 'all' }, 'page-all', now + 2);
    await source.close();

    const database = await cluster.createDatabase('optoutcopy');
    try {
      const report = await copySqliteToPostgres({
        sqlitePath: file,
        busyTimeoutMs: BUSY_TIMEOUT_MS,
        postgresUrl: database.url,
        targetDescription: 'the test database',
        now,
      });
      expect(report.tables.find((t) => t.name === 'list_opt_outs')).toEqual({
        name: 'list_opt_outs',
        source: 1,
        target: 1,
      });
      const target = await PostgresStore.open(database.url, { readonly: false });
      try {
        expect(await target.listOptOuts('a@example.org')).toEqual([
          { list: 'news', source: 'one-click', createdAt: now + 1 },
        ]);
        expect(await target.lists()).toEqual([{ name: 'news', members: 3, reachable: 1 }]);
        expect(await target.audienceSize(['news'])).toBe(2);
        // The global opt-out's source came too: a repeat changes nothing.
        expect(
          await target.optOut({ address: 'b@example.org' }, { kind: 'all' }, 'command', now + 3),
        ).toMatchObject({
          changed: false,
        });
      } finally {
        await target.close();
      }
      const { Client } = (await import('pg')).default;
      const client = new Client({ connectionString: database.url });
      await client.connect();
      try {
        const rows = await client.query(
          "SELECT unsubscribe_source FROM subscribers WHERE address = 'b@example.org'",
        );
        expect(rows.rows).toEqual([{ unsubscribe_source: 'page-all' }]);
      } finally {
        await client.end();
      }
    } finally {
      await database.drop();
    }
  });
});
