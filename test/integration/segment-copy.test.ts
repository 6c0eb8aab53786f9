/**
 * `migrate-db` copies a newsletter's segment (src/store/copy.ts): a newsletter with a segment,
 * half sent on SQLite, has the same segment, audience and counts on PostgreSQL after the move,
 * and the rest of its segment (and nobody outside it) is claimed there.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Segment } from '../../src/domain/segment.js';
import { copySqliteToPostgres } from '../../src/store/copy.js';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { describePostgres, type PgCluster, sharedCluster, stopSharedCluster } from '../helpers/postgres.js';
import {
  BUSY_TIMEOUT_MS,
  claim,
  fakeBody,
  registerTestRun,
  seedSubscribers,
  sentWrite,
  subscriber,
} from '../helpers/store-fixtures.js';

const SEGMENT: Segment = { where: [{ field: 'city', op: '=', value: 'Paris' }], excludeLists: ['staff'] };

describePostgres('migrate-db copies segments', () => {
  let cluster: PgCluster;
  let dir: string;

  beforeAll(async () => {
    cluster = await sharedCluster();
    dir = mkdtempSync(join(tmpdir(), 'newsletter-segment-copy-'));
  });

  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await stopSharedCluster();
  });

  it('a half-sent newsletter keeps its segment, and PostgreSQL claims only the rest of it', async () => {
    const now = Date.now();
    const file = join(dir, 'newsletter.db');
    const source = SqliteStore.open(file, { create: true, readonly: false, busyTimeoutMs: BUSY_TIMEOUT_MS });
    await source.migrate();
    const paris = ['a', 'b', 'c', 'd'].map((n) => subscriber(`${n}@example.org`, n, { city: 'Paris' }));
    await seedSubscribers(
      source,
      'readers',
      [
        ...paris,
        subscriber('lyon@example.org', 'L', { city: 'Lyon' }),
        subscriber('boss@example.org', 'B', { city: 'Paris' }),
      ],
      now,
    );
    await seedSubscribers(source, 'staff', [subscriber('boss@example.org', 'B', { city: 'Paris' })], now);
    const created = await source.createNewsletter(
      {
        subject: 'Hi',
        templatePath: 'x.mjml',
        from: null,
        lists: ['readers'],
        scheduledAt: now - 1000,
        segment: SEGMENT,
      },
      now,
    );
    const run = await registerTestRun(source, now);
    await source.beginSending(created, fakeBody({ compiledAt: now }), run.id, now);
    const first = await claim(source, { newsletterId: created.id, runId: run.id, limit: 2, now });
    await source.recordOutcomes(run.id, first.claimed.map(sentWrite), now + 1);
    // The run stops here (as at --max-messages), ended cleanly: the move happens between runs.
    await source.endRun(
      run.id,
      {
        outcome: 'done',
        counts: { sent: 2, failed: 0, retry: 0, unknown: 0, skipped: 0 },
        error: null,
        outcomes: [],
        handedOver: [],
      },
      now + 2,
    );
    const counts = await source.counts(created.id);
    expect(counts).toMatchObject({ audience: 4, sent: 2, pending: 2 });
    await source.close();

    const database = await cluster.createDatabase('segmentcopy');
    try {
      await copySqliteToPostgres({
        sqlitePath: file,
        busyTimeoutMs: BUSY_TIMEOUT_MS,
        postgresUrl: database.url,
        targetDescription: 'the test database',
        now,
      });
      const target = await PostgresStore.open(database.url, { readonly: false });
      try {
        expect((await target.getNewsletter(created.id))?.segment).toEqual(SEGMENT);
        expect(await target.counts(created.id)).toEqual(counts);
        const next = await registerTestRun(target, now + 10, { hostId: 'test-host' });
        const rest = await claim(target, {
          newsletterId: created.id,
          runId: next.id,
          limit: 100,
          now: now + 11,
        });
        const sentFirst = first.claimed.map((d) => d.address);
        expect([...sentFirst, ...rest.claimed.map((d) => d.address)].sort()).toEqual(
          paris.map((p) => p.address),
        );
      } finally {
        await target.close();
      }
    } finally {
      await database.drop();
    }
  });
});
