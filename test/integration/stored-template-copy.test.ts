/**
 * `migrate-db` copies what issue 14 added to a newsletter (src/store/copy.ts): the stored template
 * (byte for byte) and the zone its send time was typed in, from SQLite into PostgreSQL.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { storedTemplate } from '../../src/domain/stored-template.js';
import { copySqliteToPostgres } from '../../src/store/copy.js';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { describePostgres, type PgCluster, sharedCluster, stopSharedCluster } from '../helpers/postgres.js';
import { BUSY_TIMEOUT_MS, seedSubscribers } from '../helpers/store-fixtures.js';

describePostgres('migrate-db copies stored templates and send-time zones', () => {
  let cluster: PgCluster;
  let dir: string;

  beforeAll(async () => {
    cluster = await sharedCluster();
    dir = mkdtempSync(join(tmpdir(), 'newsletter-template-copy-'));
  });

  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await stopSharedCluster();
  });

  it('a newsletter reads the same in PostgreSQL: template, its digest, zone and From', async () => {
    const now = Date.now();
    const file = join(dir, 'newsletter.db');
    const source = SqliteStore.open(file, { create: true, readonly: false, busyTimeoutMs: BUSY_TIMEOUT_MS });
    await source.migrate();
    await seedSubscribers(source, 'news', ['ann@example.org'], now);
    const template = storedTemplate(
      [
        {
          path: 'welcome.mjml',
          content: '<mjml><mj-body><mj-include path="partials/f.mjml" /></mj-body></mjml>',
        },
        { path: 'partials/f.mjml', content: '<mj-text>Grüße "x" \\ {{unsubscribe_url}}</mj-text>' },
      ],
      now,
    );
    const created = await source.createNewsletter(
      {
        subject: 'Hi',
        templatePath: '/t/welcome.mjml',
        from: 'News <news@example.org>',
        lists: ['news'],
        scheduledAt: now + 3_600_000,
        template,
        scheduledZone: 'Europe/Paris',
      },
      now,
    );
    const legacy = await source.createNewsletter(
      { subject: 'Old', templatePath: '/t/old.mjml', from: null, lists: ['news'], scheduledAt: null },
      now,
    );
    await source.close();

    const database = await cluster.createDatabase('templatecopy');
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
        expect(await target.getNewsletter(created.id)).toMatchObject({
          template,
          scheduledZone: 'Europe/Paris',
          from: 'News <news@example.org>',
        });
        expect(await target.getNewsletter(legacy.id)).toMatchObject({ template: null, scheduledZone: null });
      } finally {
        await target.close();
      }
    } finally {
      await database.drop();
    }
  });
});
