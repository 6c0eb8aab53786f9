/**
 * `migrate-db` copies the hourly quota's count (src/store/copy.ts): a move from one SQLite host
 * to several PostgreSQL hosts in the middle of an hour must not hand the account a fresh quota.
 */
import { expect, it } from 'vitest';
import { copyFixture } from '../helpers/copy-fixture.js';
import { describePostgres } from '../helpers/postgres.js';

const HOUR = 3_600_000;

describePostgres('migrate-db copies the hourly quota', () => {
  const fixture = copyFixture('newsletter-quota-copy-');

  it('the hour in progress (and the hours before) carry on in PostgreSQL', async () => {
    const now = Date.now();
    const hour = Math.floor(now / HOUR) * HOUR;
    const source = await fixture.openSqlite();
    expect(await source.reserveQuota('news@smtp.example.org', hour - HOUR, 50, 50, now - HOUR)).toBe(50);
    expect(await source.reserveQuota('news@smtp.example.org', hour, 20, 50, now)).toBe(20);
    await source.close();

    await fixture.copy(
      'quotacopy',
      now,
      async ({ target, report }) => {
        expect(report.tables.find((t) => t.name === 'quota_usage')).toEqual({
          name: 'quota_usage',
          source: 2,
          target: 2,
        });
        expect(await target.quotaUsed('news@smtp.example.org', hour)).toBe(20);
        expect(await target.quotaUsed('news@smtp.example.org', hour - HOUR)).toBe(50);
        expect(await target.reserveQuota('news@smtp.example.org', hour, 100, 50, now)).toBe(30);
      },
      { readonly: false },
    );
  });
});
