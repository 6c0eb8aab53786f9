/**
 * `migrate-db` copies a pruned newsletter's kept counts (src/store/copy.ts): a newsletter pruned
 * on SQLite shows the same counts on PostgreSQL after the move, with no ledger rows to count.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { copySqliteToPostgres } from '../../src/store/copy.js';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { describePostgres, type PgCluster, sharedCluster, stopSharedCluster } from '../helpers/postgres.js';
import {
  addresses,
  BUSY_TIMEOUT_MS,
  claim,
  sendingNewsletter,
  sentWrite,
} from '../helpers/store-fixtures.js';

describePostgres('migrate-db copies the counts of pruned newsletters', () => {
  let cluster: PgCluster;
  let dir: string;

  beforeAll(async () => {
    cluster = await sharedCluster();
    dir = mkdtempSync(join(tmpdir(), 'newsletter-prune-copy-'));
  });

  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await stopSharedCluster();
  });

  it('a pruned newsletter keeps its counts in PostgreSQL', async () => {
    const now = Date.now();
    const file = join(dir, 'newsletter.db');
    const source = SqliteStore.open(file, { create: true, readonly: false, busyTimeoutMs: BUSY_TIMEOUT_MS });
    await source.migrate();
    const { newsletter, starter } = await sendingNewsletter(source, {
      list: 'news',
      recipients: addresses(4),
      now,
    });
    const batch = (await claim(source, { newsletterId: newsletter.id, runId: starter.id, limit: 4, now }))
      .claimed;
    await source.recordOutcomes(starter.id, batch.map(sentWrite), now + 1);
    await source.completeIfDone(newsletter.id, now + 2);
    expect(await source.pruneNewsletter(newsletter.id, now + 10, now + 3)).toMatchObject({ pruned: true });
    const counts = await source.counts(newsletter.id);
    expect(counts).toMatchObject({ audience: 4, sent: 4 });
    await source.close();

    const database = await cluster.createDatabase('prunecopy');
    try {
      await copySqliteToPostgres({
        sqlitePath: file,
        busyTimeoutMs: BUSY_TIMEOUT_MS,
        postgresUrl: database.url,
        targetDescription: 'the test database',
        now,
      });
      const target = await PostgresStore.open(database.url, { readonly: true });
      try {
        expect(await target.counts(newsletter.id)).toEqual(counts);
        expect(await target.deliveries(newsletter.id, { limit: 10 })).toEqual([]);
      } finally {
        await target.close();
      }
    } finally {
      await database.drop();
    }
  });
});
