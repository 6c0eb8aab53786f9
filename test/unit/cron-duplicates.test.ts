/**
 * Duplicated send-due lines beyond the ones for doctor's own database (which the `cron` check
 * reports): another database's, and identical lines whose database cannot be worked out, which
 * run the same thing every minute whatever it turns out to be.
 */
import { describe, expect, it } from 'vitest';
import { otherDuplicatesCheck } from '../../src/doctor/cron-duplicates.js';
import { parseCrontab, type ResolveContext, resolveDatabase } from '../../src/doctor/crontab.js';

const context: ResolveContext = {
  homeOf: (user) => (user === null ? '/home/ops' : null),
  readFile: () => null,
};
const scan = (text: string, format: 'user' | 'system' = 'user') =>
  parseCrontab(text, format, '/tmp/crontab').map((entry) => ({
    ...entry,
    ...resolveDatabase(entry, context),
  }));
const mine = '/home/ops/newsletter.db';

describe('otherDuplicatesCheck', () => {
  it('identical lines whose database cannot be worked out are duplicates', () => {
    // `nobody` has no home here, so ./newsletter.db is relative to an unknown folder.
    const line = '* * * * * nobody newsletter send-due';
    const commands = scan(`${line}\n${line}`, 'system');
    expect(commands.every((entry) => entry.database === null)).toBe(true);
    const [check] = otherDuplicatesCheck(commands, mine);
    expect(check).toMatchObject({ name: 'cron-duplicates', level: 'warning' });
    expect(check?.message).toContain('the identical line `newsletter send-due`');
    expect(check?.message).toContain('appears 2 times: /tmp/crontab:1, /tmp/crontab:2');
    expect(check?.message).toContain('could not be worked out');
  });

  it('spacing does not make lines different; another user or NEWSLETTER_* setting does', () => {
    const same = scan(
      '* * * * * nobody newsletter  send-due\n*/1 * * * * nobody newsletter send-due',
      'system',
    );
    expect(otherDuplicatesCheck(same, mine)).toHaveLength(1);
    const users = scan('* * * * * nobody newsletter send-due\n* * * * * ghost newsletter send-due', 'system');
    expect(otherDuplicatesCheck(users, mine)).toEqual([]);
    const settings = scan(
      'NEWSLETTER_LOCK_DIR=a\n* * * * * nobody newsletter send-due\nNEWSLETTER_LOCK_DIR=b\n* * * * * nobody newsletter send-due',
      'system',
    );
    expect(otherDuplicatesCheck(settings, mine)).toEqual([]);
  });

  it('another database twice is reported; this database is left to the cron check', () => {
    const other = '* * * * * newsletter --database /srv/other.db send-due';
    const own = '* * * * * newsletter send-due';
    const [check, ...rest] = otherDuplicatesCheck(scan(`${other}\n${own}\n${other}\n${own}`), mine);
    expect(rest).toEqual([]);
    expect(check?.message).toContain(
      'send-due for /srv/other.db appears 2 times: /tmp/crontab:1, /tmp/crontab:3',
    );
    expect(check?.message).not.toContain(mine);
  });

  it('no duplicate, no check', () => {
    expect(
      otherDuplicatesCheck(scan('* * * * * newsletter --database /srv/other.db send-due'), mine),
    ).toEqual([]);
  });
});
