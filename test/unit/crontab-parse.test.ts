/**
 * Reading crontabs for send-due lines, and working out which database each one uses: the way the
 * CLI itself decides (flags, then the environment, then the env file, then ./newsletter.db).
 */
import { describe, expect, it } from 'vitest';
import {
  cronChecks,
  isSendDue,
  parseCrontab,
  parseSystemdUnit,
  type ResolveContext,
  resolveDatabase,
  sixthFieldsAreUsers,
  splitCommand,
} from '../../src/doctor/crontab.js';

const files: Record<string, string> = {
  '/etc/newsletter/site.env': 'NEWSLETTER_DATABASE=/var/lib/newsletter/site.db\n',
  '/srv/site/.env': 'NEWSLETTER_DATABASE=data/news.db\n',
  '/srv/plain/.env': 'NEWSLETTER_FROM=x@example.org\n',
};
const context: ResolveContext = {
  homeOf: (user) => (user === null ? '/home/ops' : user === 'root' ? '/root' : null),
  readFile: (file) => files[file] ?? null,
};
const resolve = (line: string, format: 'user' | 'system' = 'user') => {
  const [entry] = parseCrontab(line, format, 'test');
  if (!entry) throw new Error(`no command in ${line}`);
  return resolveDatabase(entry, context).database;
};

describe('parseCrontab', () => {
  it('reads the schedule, the command and the assignments above each line', () => {
    const entries = parseCrontab(
      [
        '# a comment',
        'MAILTO=ops@example.org',
        'PATH = /usr/local/bin:/usr/bin:/bin',
        '* * * * * newsletter --env-file /etc/newsletter/site.env send-due',
        'MAILTO=""',
        '@hourly   newsletter send-due --max-seconds 50 % ignored stdin',
        '',
      ].join('\n'),
      'user',
      'crontab -l',
    );
    expect(entries).toEqual([
      expect.objectContaining({
        line: 4,
        schedule: '* * * * *',
        user: null,
        command: 'newsletter --env-file /etc/newsletter/site.env send-due',
        env: { MAILTO: 'ops@example.org', PATH: '/usr/local/bin:/usr/bin:/bin' },
      }),
      expect.objectContaining({
        line: 6,
        schedule: '@hourly',
        command: 'newsletter send-due --max-seconds 50',
        env: { MAILTO: '', PATH: '/usr/local/bin:/usr/bin:/bin' },
      }),
    ]);
  });

  it('reads the user field of /etc/crontab and /etc/cron.d files', () => {
    const [entry] = parseCrontab('*/1 * * * * www-data cd /srv/site && newsletter send-due', 'system', 'x');
    expect(entry).toMatchObject({ user: 'www-data', command: 'cd /srv/site && newsletter send-due' });
  });

  it('keeps a literal \\% and stops at a bare %', () => {
    const [entry] = parseCrontab('* * * * * newsletter send-due --x 50\\% %rest', 'user', 'x');
    expect(entry?.command).toBe('newsletter send-due --x 50%');
  });
});

describe('isSendDue', () => {
  it.each([
    ['newsletter send-due', true],
    ['cd /srv && /usr/local/bin/newsletter send-due >>/var/log/n.log 2>&1', true],
    ['node /opt/newsletter/bin/newsletter.js --env-file a.env send-due', true],
    ['newsletter send-due --dry-run', false],
    ['newsletter status', false],
    ['other-tool send-due', false],
    ['newsletter send-due-report', false],
  ])('%s → %s', (command, expected) => {
    expect(isSendDue(command)).toBe(expected);
  });
});

describe('resolveDatabase', () => {
  it('--database wins, relative to the folder the command runs in', () => {
    expect(resolve('* * * * * cd /srv/site && newsletter --database db/x.db send-due')).toBe(
      '/srv/site/db/x.db',
    );
    expect(resolve('* * * * * newsletter --database=/abs/x.db send-due')).toBe('/abs/x.db');
  });

  it('then NEWSLETTER_DATABASE: a crontab assignment, `VAR=… cmd` or `env VAR=… cmd`', () => {
    expect(resolve('NEWSLETTER_DATABASE=/a.db\n* * * * * newsletter send-due')).toBe('/a.db');
    expect(resolve('* * * * * NEWSLETTER_DATABASE=/b.db newsletter send-due')).toBe('/b.db');
    expect(resolve('* * * * * env -i NEWSLETTER_DATABASE=/c.db newsletter send-due')).toBe('/c.db');
    expect(resolve('* * * * * export NEWSLETTER_DATABASE=/d.db; newsletter send-due')).toBe('/d.db');
  });

  it('then the env file: --env-file, or .env in the folder it runs in', () => {
    expect(resolve('* * * * * newsletter --env-file /etc/newsletter/site.env send-due')).toBe(
      '/var/lib/newsletter/site.db',
    );
    expect(resolve("* * * * * cd '/srv/site' && newsletter send-due")).toBe('/srv/site/data/news.db');
  });

  it('else ./newsletter.db in the folder it runs in (the owner’s home without cd)', () => {
    expect(resolve('* * * * * cd /srv/plain && newsletter send-due')).toBe('/srv/plain/newsletter.db');
    expect(resolve('* * * * * newsletter send-due')).toBe('/home/ops/newsletter.db');
    expect(resolve('* * * * * root newsletter send-due', 'system')).toBe('/root/newsletter.db');
  });

  it('looks inside `sh -c` (and bash -lc): the cd and the env file there count', () => {
    expect(resolve(`* * * * * sh -c 'cd /srv/site && newsletter send-due'`)).toBe('/srv/site/data/news.db');
    expect(resolve(`* * * * * /bin/bash -lc "cd /srv/plain; newsletter send-due"`)).toBe(
      '/srv/plain/newsletter.db',
    );
  });

  it('--env-file after the command, or with =, relative to the folder of the cd', () => {
    expect(resolve('* * * * * newsletter send-due --env-file=/etc/newsletter/site.env')).toBe(
      '/var/lib/newsletter/site.db',
    );
    expect(resolve('* * * * * cd /etc/newsletter && newsletter --env-file site.env send-due')).toBe(
      '/var/lib/newsletter/site.db',
    );
  });

  it('says why when it cannot tell', () => {
    const [unknownUser] = parseCrontab('* * * * * nobody newsletter send-due', 'system', 'x');
    expect(resolveDatabase(unknownUser!, context)).toEqual({
      database: null,
      unresolved: expect.stringContaining('relative'),
    });
    const [missingEnv] = parseCrontab('* * * * * newsletter --env-file /nope.env send-due', 'user', 'x');
    expect(resolveDatabase(missingEnv!, context).unresolved).toContain('/nope.env');
  });

  it('reads a systemd service: WorkingDirectory, Environment and ExecStart', () => {
    const entries = parseSystemdUnit(
      [
        '[Service]',
        'User=newsletter',
        'WorkingDirectory=/srv/site',
        'Environment="NEWSLETTER_DATABASE=/var/lib/newsletter/unit.db" OTHER=1',
        'ExecStart=/usr/bin/newsletter send-due',
      ].join('\n'),
      'unit.service',
    );
    expect(entries).toHaveLength(1);
    expect(resolveDatabase(entries[0]!, context).database).toBe('/var/lib/newsletter/unit.db');
  });
});

describe('sixthFieldsAreUsers', () => {
  const isUser = (name: string) => ['root', 'www-data'].includes(name);
  it('a copy of /etc/crontab: every line names a user after its schedule', () => {
    expect(
      sixthFieldsAreUsers('SHELL=/bin/sh\n17 * * * * root cd / && run-parts /etc/cron.hourly', isUser),
    ).toBe(true);
  });
  it('`crontab -l > crontab`: the command comes right after the schedule', () => {
    expect(sixthFieldsAreUsers('* * * * * cd /srv/site && newsletter send-due', isUser)).toBe(false);
    expect(sixthFieldsAreUsers('* * * * * root true\n* * * * * newsletter send-due', isUser)).toBe(false);
    expect(sixthFieldsAreUsers('# nothing but comments\n', isUser)).toBe(false);
    // A `newsletter` user on the host does not make the program its user.
    const withUser = (name: string) => name === 'newsletter' || isUser(name);
    expect(sixthFieldsAreUsers('* * * * * newsletter send-due', withUser)).toBe(false);
    expect(sixthFieldsAreUsers('* * * * * newsletter --env-file /etc/n.env send-due', withUser)).toBe(false);
    expect(sixthFieldsAreUsers('* * * * * newsletter newsletter send-due', withUser)).toBe(true);
  });
});

describe('splitCommand', () => {
  it('cuts at && ; and |, and removes quotes', () => {
    expect(splitCommand(`cd "/srv/my site" && newsletter send-due | logger -t 'news letter'`)).toEqual([
      ['cd', '/srv/my site'],
      ['newsletter', 'send-due'],
      ['logger', '-t', 'news letter'],
    ]);
  });
});

describe('cronChecks', () => {
  const db = '/var/lib/newsletter/site.db';
  const scan = (text: string, source = '/tmp/crontab') =>
    parseCrontab(text, 'user', source).map((entry) => ({ ...entry, ...resolveDatabase(entry, context) }));

  it('one line with MAILTO: both ok', () => {
    const results = cronChecks(
      scan('MAILTO=ops@example.org\n* * * * * newsletter --env-file /etc/newsletter/site.env send-due'),
      db,
      ['/tmp/crontab'],
    );
    expect(results.map((r) => [r.name, r.level])).toEqual([
      ['cron', 'ok'],
      ['cron-mailto', 'ok'],
    ]);
    expect(results[1]?.message).toContain('ops@example.org');
  });

  it('the same database twice (in one file or across files) is a warning that lists both places', () => {
    const line = '* * * * * newsletter --env-file /etc/newsletter/site.env send-due';
    const results = cronChecks(
      [
        ...scan(`MAILTO=a@example.org\n${line}\n${line}`),
        ...scan(`MAILTO=b@example.org\n${line}`, '/etc/cron.d/x'),
      ],
      db,
      ['/tmp/crontab', '/etc/cron.d/x'],
    );
    expect(results[0]).toMatchObject({ name: 'cron', level: 'warning' });
    expect(results[0]?.message).toContain('appears 3 times');
    expect(results[0]?.message).toContain('/tmp/crontab:2');
    expect(results[0]?.message).toContain('/tmp/crontab:3');
    expect(results[0]?.message).toContain('/etc/cron.d/x:2');
    expect(results[0]?.fix).toContain('Keep exactly one line');
  });

  it('lines for other databases do not count; none for this one is a warning', () => {
    const results = cronChecks(scan('* * * * * newsletter --database /other.db send-due'), db, [
      '/tmp/crontab',
    ]);
    expect(results).toEqual([expect.objectContaining({ name: 'cron', level: 'warning' })]);
    expect(results[0]?.message).toContain('No send-due line');
  });

  it('no MAILTO, or an empty one, is a warning', () => {
    const line = '* * * * * newsletter --env-file /etc/newsletter/site.env send-due';
    const unset = cronChecks(scan(line), db, []);
    expect(unset[1]).toMatchObject({ name: 'cron-mailto', level: 'warning' });
    expect(unset[1]?.message).toContain('no MAILTO');
    const empty = cronChecks(scan(`MAILTO=""\n${line}`), db, []);
    expect(empty[1]?.message).toContain('MAILTO=""');
  });
});
