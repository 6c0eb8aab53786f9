/**
 * `migrate-db` copies a pruned newsletter's kept counts (src/store/copy.ts): a newsletter pruned
 * on SQLite shows the same counts on PostgreSQL after the move, with no ledger rows to count.
 */
import { expect, it } from 'vitest';
import { copyFixture } from '../helpers/copy-fixture.js';
import { describePostgres } from '../helpers/postgres.js';
import { addresses, claim, sendingNewsletter, sentWrite } from '../helpers/store-fixtures.js';

describePostgres('migrate-db copies the counts of pruned newsletters', () => {
  const fixture = copyFixture('newsletter-prune-copy-');

  it('a pruned newsletter keeps its counts in PostgreSQL', async () => {
    const now = Date.now();
    const source = await fixture.openSqlite();
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

    await fixture.copy('prunecopy', now, async ({ target }) => {
      expect(await target.counts(newsletter.id)).toEqual(counts);
      expect(await target.deliveries(newsletter.id, { limit: 10 })).toEqual([]);
    });
  });
});
