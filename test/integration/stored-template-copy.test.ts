/**
 * `migrate-db` copies what issue 14 added to a newsletter (src/store/copy.ts): the stored template
 * (byte for byte, with its compiled HTML) and the zone its send time was typed in, from SQLite into
 * PostgreSQL.
 */
import { expect, it } from 'vitest';
import { storedTemplate } from '../../src/domain/stored-template.js';
import { copyFixture } from '../helpers/copy-fixture.js';
import { describePostgres } from '../helpers/postgres.js';
import { seedSubscribers } from '../helpers/store-fixtures.js';

describePostgres('migrate-db copies stored templates and send-time zones', () => {
  const fixture = copyFixture('newsletter-template-copy-');

  it('a newsletter reads the same in PostgreSQL: template, its digest, zone and From', async () => {
    const now = Date.now();
    const source = await fixture.openSqlite();
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
      { key: 'a'.repeat(64), html: '<p>Grüße "x" \\ {{unsubscribe_url}}</p>' },
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

    await fixture.copy('templatecopy', now, async ({ target }) => {
      expect(await target.getNewsletter(created.id)).toMatchObject({
        template,
        scheduledZone: 'Europe/Paris',
        from: 'News <news@example.org>',
      });
      expect(await target.getNewsletter(legacy.id)).toMatchObject({ template: null, scheduledZone: null });
    });
  });
});
