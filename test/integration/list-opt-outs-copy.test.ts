/**
 * `migrate-db` copies issue 14's opt-outs (src/store/copy.ts): the per-list ones (list_opt_outs)
 * and how a global one was made (subscribers.unsubscribe_source). A move to PostgreSQL must not
 * bring anybody back to a list they left.
 */
import { expect, it } from 'vitest';
import { copyFixture } from '../helpers/copy-fixture.js';
import { describePostgres } from '../helpers/postgres.js';
import { seedSubscribers } from '../helpers/store-fixtures.js';

describePostgres('migrate-db copies per-list opt-outs', () => {
  const fixture = copyFixture('newsletter-optout-copy-');

  it('list_opt_outs and unsubscribe_source arrive, and the audience still leaves them out', async () => {
    const now = Date.now();
    const source = await fixture.openSqlite();
    await seedSubscribers(source, 'news', ['a@example.org', 'b@example.org', 'c@example.org'], now);
    await source.optOut(
      { address: 'a@example.org' },
      { kind: 'lists', lists: ['news'] },
      'one-click',
      now + 1,
    );
    await source.optOut({ address: 'b@example.org' }, { kind: 'all' }, 'page-all', now + 2);
    await source.close();

    await fixture.copy(
      'optoutcopy',
      now,
      async ({ target, report, url }) => {
        expect(report.tables.find((t) => t.name === 'list_opt_outs')).toEqual({
          name: 'list_opt_outs',
          source: 1,
          target: 1,
        });
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
        const { Client } = (await import('pg')).default;
        const client = new Client({ connectionString: url });
        await client.connect();
        try {
          const rows = await client.query(
            "SELECT unsubscribe_source FROM subscribers WHERE address = 'b@example.org'",
          );
          expect(rows.rows).toEqual([{ unsubscribe_source: 'page-all' }]);
        } finally {
          await client.end();
        }
      },
      { readonly: false },
    );
  });
});
