/**
 * Misspelt NEWSLETTER_* names where cron's send-due gets its settings (the crontab's assignments,
 * the line's env file), which doctor's own environment may not share.
 */
import { describe, expect, it } from 'vitest';
import { parseCrontab, type ResolveContext, resolveDatabase } from '../../src/doctor/crontab.js';
import { cronUnknownVariables, cronVariablesCheck } from '../../src/doctor/cron-variables.js';

const files: Record<string, string> = {
  '/etc/newsletter/site.env': 'NEWSLETTER_DATABASE=/var/lib/site.db\nNEWSLETTER_SECERT=x\n',
  '/srv/site/.env': 'NEWSLETTER_RAET=5\n',
};
const context: ResolveContext = { homeOf: () => '/home/ops', readFile: (file) => files[file] ?? null };
const scan = (text: string) =>
  parseCrontab(text, 'user', '/tmp/crontab').map((entry) => ({
    ...entry,
    ...resolveDatabase(entry, context),
  }));

describe('cronUnknownVariables', () => {
  it('reads the assignments above each send-due line and the env file it uses (--env-file, or .env after cd)', () => {
    const commands = scan(
      [
        'NEWSLETTER_FORM=news@example.org',
        '* * * * * newsletter --env-file /etc/newsletter/site.env send-due',
        '* * * * * cd /srv/site && newsletter send-due',
        '0 3 * * * newsletter status',
      ].join('\n'),
    );
    expect(cronUnknownVariables(commands, context.readFile)).toEqual([
      { name: 'NEWSLETTER_FORM', source: 'the settings above /tmp/crontab:2', suggestion: 'NEWSLETTER_FROM' },
      { name: 'NEWSLETTER_SECERT', source: '/etc/newsletter/site.env', suggestion: 'NEWSLETTER_SECRET' },
      { name: 'NEWSLETTER_FORM', source: 'the settings above /tmp/crontab:3', suggestion: 'NEWSLETTER_FROM' },
      { name: 'NEWSLETTER_RAET', source: '/srv/site/.env', suggestion: 'NEWSLETTER_RATE' },
    ]);
  });
});

describe('cronVariablesCheck', () => {
  const secert = {
    name: 'NEWSLETTER_SECERT',
    source: '/etc/newsletter/site.env',
    suggestion: 'NEWSLETTER_SECRET',
  };
  it('names each once, and leaves out what the variables check already names', () => {
    const [check] = cronVariablesCheck([secert, secert], []);
    expect(check).toMatchObject({ name: 'cron-variables', level: 'warning' });
    expect(check?.message.match(/NEWSLETTER_SECERT/g)).toHaveLength(1);
    expect(check?.message).toContain('did you mean NEWSLETTER_SECRET?');
    expect(cronVariablesCheck([secert], [secert])).toEqual([]);
    expect(cronVariablesCheck([], [])).toEqual([]);
  });
});
