/**
 * Bad input through the built CLI: each case gets a clear message on stderr that names the
 * problem, the documented exit code (src/domain/exit-codes.ts), and no change to the data: the
 * database file (and its WAL) is byte-for-byte what it was.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/domain/exit-codes.js';
import {
  assertBuilt,
  closedPort,
  describeRun,
  type EnvPatch,
  makeWorkspace,
  type Workspace,
} from '../helpers/cli.js';
import { startSmtpSink } from '../helpers/smtp-sink.js';

interface Counts {
  sent: number;
  failed: number;
  skipped: number;
  unknown: number;
  retry: number;
  claimed: number;
  pending: number;
}

const workspaces: Workspace[] = [];

beforeAll(() => {
  assertBuilt();
});

afterAll(async () => {
  for (const ws of workspaces.splice(0)) await ws.cleanup();
});

async function workspace(): Promise<Workspace> {
  const ws = await makeWorkspace('newsletter-bad-');
  workspaces.push(ws);
  return ws;
}

/**
 * Runs a command that must be refused: the exit code, every expected phrase on stderr, nothing on
 * stdout, and the database exactly as it was.
 */
async function expectRefused(
  ws: Workspace,
  args: string[],
  expected: { code: number; stderr: (string | RegExp)[]; env?: EnvPatch },
) {
  const before = ws.dbDigest();
  const result = await ws.run(args, expected.env ? { env: expected.env } : {});
  const context = describeRun(args, result);
  expect(result.code, context).toBe(expected.code);
  expect(result.stdout, context).toBe('');
  for (const phrase of expected.stderr) {
    if (typeof phrase === 'string') expect(result.stderr, context).toContain(phrase);
    else expect(result.stderr, context).toMatch(phrase);
  }
  expect(ws.dbDigest(), `the database changed: ${context}`).toEqual(before);
  return result;
}

async function subscribers(ws: Workspace): Promise<{ email: string; name: string; city?: string }[]> {
  const list = await ws.json<{ email: string; name: string; fields: Record<string, string> }[]>([
    'recipients',
    'list',
    '--json',
  ]);
  return list.map((s) => ({ email: s.email, name: s.name, ...s.fields }));
}

describe('recipients import: a bad CSV is refused whole, by line number', () => {
  let ws: Workspace;
  beforeAll(async () => {
    ws = await workspace();
    await ws.ok(['init']);
    await ws.ok(['recipients', 'add', 'first@example.org', '--name', 'First', '--list', 'readers']);
  });

  it('a CSV without an email column: one problem, one fix, said once', async () => {
    const file = await ws.write('no-email.csv', 'name,Adresse\nAda,ada@example.org\n');
    const result = await expectRefused(ws, ['recipients', 'import', file, '--list', 'readers'], {
      code: ExitCode.input,
      stderr: ['no-email.csv, line 1', 'no email column', '--map "COLUMN=email"'],
    });
    expect(result.stderr.split('no email column')).toHaveLength(2);
    expect(result.stderr).not.toContain('rename');
  });

  it('several header problems: each is printed once', async () => {
    const file = await ws.write('header.csv', 'Courriel,City,city,unsubscribe_url\nada@example.org,a,b,c\n');
    const result = await expectRefused(ws, ['recipients', 'import', file, '--list', 'readers'], {
      code: ExitCode.input,
      stderr: [
        'header.csv, line 1',
        'no email column',
        '(and 2 more problems)',
        'as column 2 "City" is',
        'reserved',
      ],
    });
    for (const phrase of ['no email column', 'as column 2 "City" is', 'reserved']) {
      expect(result.stderr.split(phrase), phrase).toHaveLength(2);
    }
  });

  it('invalid addresses: every bad line is named and nothing is imported', async () => {
    const file = await ws.write(
      'invalid.csv',
      'email,name\nok@example.org,Ok\nnot-an-address,B\nfine@example.org,C\nx@@example.org,D\n',
    );
    await expectRefused(ws, ['recipients', 'import', file, '--list', 'readers'], {
      code: ExitCode.input,
      stderr: [
        '2 invalid rows; nothing was imported',
        /line 3: "not-an-address"/,
        /line 5: "x@@example.org"/,
      ],
    });
    expect((await subscribers(ws)).map((s) => s.email)).toEqual(['first@example.org']);
  });

  it('an address holding an invisible character: the line is named and nothing is imported', async () => {
    // A BOM at the start of the file is fine (Excel writes one); a zero width space is not.
    const file = await ws.write(
      'invisible.csv',
      Buffer.concat([
        Buffer.from([0xef, 0xbb, 0xbf]),
        Buffer.from('email,name\nzed@example.org,Zed\n\u200bdan@example.com,Dan\ndan@example.com,Dan\n'),
      ]),
    );
    await expectRefused(ws, ['recipients', 'import', file, '--list', 'readers'], {
      code: ExitCode.input,
      stderr: [
        '1 invalid row; nothing was imported',
        /line 3: "\\u200bdan@example\.com" contains an invisible character U\+200B \(ZERO WIDTH SPACE\)/,
      ],
    });
    expect((await subscribers(ws)).map((s) => s.email)).toEqual(['first@example.org']);
  });

  it('recipients add refuses an address holding an invisible character, naming it', async () => {
    await expectRefused(ws, ['recipients', 'add', 'dan\u00ad@example.com'], {
      code: ExitCode.input,
      stderr: ['invisible character U+00AD (SOFT HYPHEN)'],
    });
  });

  it('a cell holding two addresses', async () => {
    const file = await ws.write('two.csv', 'email,name\n"a@example.org, b@example.org",A\n');
    await expectRefused(ws, ['recipients', 'import', file], {
      code: ExitCode.input,
      stderr: [/line 2: .*more than one address/],
    });
  });

  it('an empty file', async () => {
    const file = await ws.write('empty.csv', '');
    await expectRefused(ws, ['recipients', 'import', file], {
      code: ExitCode.input,
      stderr: ['empty.csv, line 1: the file is empty'],
    });
  });

  it('a missing file', async () => {
    await expectRefused(ws, ['recipients', 'import', ws.path('nowhere.csv')], {
      code: ExitCode.input,
      stderr: ['nowhere.csv: no such file'],
    });
  });

  it('duplicates that differ only in case: imported once, with a warning naming both lines', async () => {
    const file = await ws.write(
      'dupes.csv',
      'email,name\nAda@Example.org,Ada\nzed@example.org,Zed\nada@example.org,ada again\n',
    );
    const result = await ws.run(['recipients', 'import', file, '--list', 'readers']);
    expect(result.code, describeRun(['import'], result)).toBe(0);
    expect(result.stderr).toMatch(/line 4: ada@example\.org already appeared on line 2/);
    const all = await subscribers(ws);
    expect(all.filter((s) => s.email.toLowerCase() === 'ada@example.org')).toEqual([
      expect.objectContaining({ name: 'Ada' }),
    ]);
  });

  it('a UTF-8 BOM, CRLF line ends and quoted commas import fine', async () => {
    const file = await ws.write(
      'excel.csv',
      Buffer.concat([
        Buffer.from([0xef, 0xbb, 0xbf]),
        Buffer.from(
          'email,name,city\r\nbom@example.org,"Lovelace, Ada","London, UK"\r\ncrlf@example.org,Grace,"Arlington, VA"\r\n',
        ),
      ]),
    );
    const result = await ws.json<{ created: number; fields: string[]; invalid: unknown[] }>([
      'recipients',
      'import',
      file,
      '--list',
      'readers',
      '--json',
    ]);
    expect(result).toMatchObject({ created: 2, fields: ['city'], invalid: [] });
    const all = await subscribers(ws);
    expect(all).toContainEqual({ email: 'bom@example.org', name: 'Lovelace, Ada', city: 'London, UK' });
    expect(all).toContainEqual({ email: 'crlf@example.org', name: 'Grace', city: 'Arlington, VA' });
  });

  it('--skip-invalid imports the valid rows and names the skipped lines', async () => {
    const file = await ws.write(
      'mixed.csv',
      'email,name\nvalid1@example.org,V1\nbroken,B\nvalid2@example.org,V2\n',
    );
    const result = await ws.run(['recipients', 'import', file, '--skip-invalid']);
    expect(result.code, describeRun(['import'], result)).toBe(0);
    expect(result.stderr).toMatch(/line 3 skipped: "broken"/);
    const emails = (await subscribers(ws)).map((s) => s.email);
    expect(emails).toEqual(expect.arrayContaining(['valid1@example.org', 'valid2@example.org']));
    expect(emails).not.toContain('broken');
  });
});

describe('create: every problem is found before anything is stored', () => {
  let ws: Workspace;
  let templates: string;
  beforeAll(async () => {
    ws = await workspace();
    templates = ws.copyTemplates();
    await ws.ok(['init']);
    const { file } = await ws.writeCsv(2);
    await ws.ok(['recipients', 'import', file, '--list', 'readers']);
    // A list whose only member was removed: it exists, with nobody in it.
    await ws.ok(['recipients', 'add', 'gone@example.org', '--list', 'lonely']);
    await ws.ok(['recipients', 'remove', 'gone@example.org']);
    const welcome = path.join(templates, 'welcome.mjml');
    const source = readFileSync(welcome, 'utf8');
    writeFileSync(
      path.join(templates, 'bogus-tag.mjml'),
      source.replace('<mj-button ', '<mj-buton ').replace('</mj-button>', '</mj-buton>'),
    );
    writeFileSync(
      path.join(templates, 'unknown-field.mjml'),
      source.replace('Thank you for subscribing.', 'Thank you, fan of {{favourite_colour}}.'),
    );
  });

  const create = (overrides: { subject?: string; template?: string; list?: string; at?: string }) => [
    'create',
    '--subject',
    overrides.subject ?? 'Hello {{name}}',
    '--template',
    overrides.template ?? path.join(templates, 'welcome.mjml'),
    '--list',
    overrides.list ?? 'readers',
    ...(overrides.at === undefined ? [] : ['--at', overrides.at]),
  ];

  const expectNoNewsletter = async () => expect(await ws.json(['list', '--json'])).toEqual([]);

  it('a missing template', async () => {
    await expectRefused(ws, create({ template: 'templates/nope.mjml' }), {
      code: ExitCode.input,
      stderr: ['--template templates/nope.mjml: no such file'],
    });
    await expectNoNewsletter();
  });

  it('MJML that does not compile', async () => {
    await expectRefused(ws, create({ template: path.join(templates, 'bogus-tag.mjml') }), {
      code: ExitCode.input,
      stderr: ['bogus-tag.mjml', 'mj-buton'],
    });
    await expectNoNewsletter();
  });

  it('an unknown {{field}}, named', async () => {
    await expectRefused(ws, create({ template: path.join(templates, 'unknown-field.mjml') }), {
      code: ExitCode.input,
      stderr: ['favourite_colour'],
    });
    await expectRefused(ws, create({ subject: 'Hi {{nickname}}' }), {
      code: ExitCode.input,
      stderr: ['nickname'],
    });
    await expectNoNewsletter();
  });

  it('a subject with CR/LF', async () => {
    await expectRefused(ws, create({ subject: 'Hello\r\nBcc: everyone@example.org' }), {
      code: ExitCode.input,
      stderr: ['--subject contains a line break'],
    });
    await expectNoNewsletter();
  });

  it('an unparseable --at', async () => {
    await expectRefused(ws, create({ at: 'next tuesday-ish' }), {
      code: ExitCode.input,
      stderr: ['--at "next tuesday-ish" is not a time'],
    });
    await expectNoNewsletter();
  });

  it('an unknown list', async () => {
    await expectRefused(ws, create({ list: 'nope' }), {
      code: ExitCode.input,
      stderr: ['There is no list "nope"', 'readers'],
    });
    await expectNoNewsletter();
  });

  it('a list with no recipients', async () => {
    await expectRefused(ws, create({ list: 'lonely' }), {
      code: ExitCode.input,
      stderr: ['List "lonely" has no recipients'],
    });
    await expectNoNewsletter();
  });

  it('several problems at once are all reported', async () => {
    await expectRefused(ws, create({ list: 'nope', at: 'soonish', subject: 'Hi {{nickname}}' }), {
      code: ExitCode.input,
      stderr: [/\d+ problems/, '--at "soonish"', 'There is no list "nope"', 'nickname'],
    });
    await expectNoNewsletter();
  });
});

describe('the database', () => {
  it('a path in a folder that does not exist', async () => {
    const ws = await workspace();
    const missing = ws.path('missing', 'news.db');
    const result = await ws.run(['init'], { env: { NEWSLETTER_DATABASE: missing } });
    expect(result.code, describeRun(['init'], result)).toBe(ExitCode.database);
    expect(result.stderr).toContain(`the folder ${ws.path('missing')} does not exist`);
    expect(existsSync(ws.path('missing'))).toBe(false);
  });

  it('a file that is not a database is refused by every command, untouched', async () => {
    const ws = await workspace();
    writeFileSync(ws.db, randomBytes(8192));
    const env = { NEWSLETTER_TRANSPORT: 'file:./outbox' };
    for (const args of [['init'], ['status'], ['send-due'], ['send-due', '--dry-run']]) {
      await expectRefused(ws, args, {
        code: ExitCode.database,
        stderr: [`${ws.db} is not a usable SQLite database`],
        env,
      });
    }
    expect(readdirSync(ws.dir).sort()).toEqual(['newsletter.db']);
  });

  it('a database older than the code: says to run `newsletter init`', async () => {
    const ws = await workspace();
    const env = { NEWSLETTER_TRANSPORT: 'file:./outbox' };
    // An initialised database whose migrations are not recorded reads as schema 0.
    await ws.ok(['init']);
    const db = new Database(ws.db);
    db.exec('DELETE FROM schema_migrations');
    db.close();
    for (const args of [['send-due'], ['status'], ['recipients', 'add', 'a@example.org']]) {
      await expectRefused(ws, args, {
        code: ExitCode.database,
        stderr: [`${ws.db} has schema version 0`, 'Run `newsletter init`'],
        env,
      });
    }
  });

  it('a file nobody ran `init` on: says to run `newsletter init`, and creates no table', async () => {
    const ws = await workspace();
    writeFileSync(ws.db, '');
    const result = await ws.run(['send-due'], { env: { NEWSLETTER_TRANSPORT: 'file:./outbox' } });
    expect(result.code, describeRun(['send-due'], result)).toBe(ExitCode.database);
    expect(result.stderr).toContain('has schema version 0');
    expect(result.stderr).toContain('Run `newsletter init`');
    // Row counts, not bytes: opening an empty file for writing formats it as an (empty) WAL database.
    const db = new Database(ws.db, { readonly: true });
    expect(db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get()).toEqual({
      n: 0,
    });
    db.close();
  });

  it('a database locked by another writer past the busy timeout: exit 5, and nothing lost', async () => {
    const ws = await workspace();
    await ws.ok(['init']);
    const { file, addresses } = await ws.writeCsv(3);
    await ws.ok(['recipients', 'import', file, '--list', 'readers']);
    await ws.ok([
      'create',
      '--subject',
      'Hi',
      '--template',
      path.join(ws.copyTemplates(), 'welcome.mjml'),
      '--list',
      'readers',
      '--at',
      'now',
    ]);

    const env = { NEWSLETTER_BUSY_TIMEOUT: '1s', NEWSLETTER_TRANSPORT: 'file:./outbox' };
    const holder = new Database(ws.db);
    holder.exec('BEGIN IMMEDIATE');
    try {
      await expectRefused(ws, ['recipients', 'add', 'late@example.org', '--list', 'readers'], {
        code: ExitCode.database,
        stderr: [/locked/i],
        env,
      });
      await expectRefused(ws, ['send-due'], { code: ExitCode.database, stderr: [/locked/i], env });
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
    // The refused run left no lock behind and claimed nobody: the next run sends everyone once.
    expect(readdirSync(ws.dir).filter((f) => f.includes('.lock'))).toEqual([]);
    const show = await ws.json<{ counts: Counts }>(['show', '1', '--json']);
    expect(show.counts).toMatchObject({ claimed: 0, sent: 0, pending: 3 });
    const run = await ws.run(['send-due'], { env });
    expect(run, describeRun(['send-due'], run)).toMatchObject({ code: 0, stderr: '' });
    expect(readdirSync(ws.path('outbox'))).toHaveLength(addresses.length);
    expect((await ws.json<{ counts: Counts }>(['show', '1', '--json'])).counts.sent).toBe(3);
  });
});

describe('the transport', () => {
  let ws: Workspace;
  let addresses: string[];
  beforeAll(async () => {
    ws = await workspace();
    await ws.ok(['init']);
    const csv = await ws.writeCsv(4);
    addresses = csv.addresses;
    await ws.ok(['recipients', 'import', csv.file, '--list', 'readers']);
    await ws.ok([
      'create',
      '--subject',
      'Hi {{name}}',
      '--template',
      path.join(ws.copyTemplates(), 'welcome.mjml'),
      '--list',
      'readers',
      '--at',
      'now',
    ]);
  });

  const show = () => ws.json<{ status: string; counts: Counts }>(['show', '1', '--json']);

  it('no NEWSLETTER_TRANSPORT for a real send: exit 3, nothing claimed', async () => {
    await expectRefused(ws, ['send-due'], {
      code: ExitCode.config,
      stderr: ['NEWSLETTER_TRANSPORT is not set'],
      env: { NEWSLETTER_TRANSPORT: undefined },
    });
    expect(await show()).toMatchObject({ status: 'scheduled', counts: { claimed: 0, sent: 0, pending: 4 } });
    expect(existsSync(ws.path('outbox'))).toBe(false);
  });

  it('an invalid NEWSLETTER_TRANSPORT: exit 3', async () => {
    await expectRefused(ws, ['send-due'], {
      code: ExitCode.config,
      stderr: ['NEWSLETTER_TRANSPORT must be smtp://'],
      env: { NEWSLETTER_TRANSPORT: 'ftp://mail.example.org' },
    });
    await expectRefused(ws, ['send-due'], {
      code: ExitCode.config,
      stderr: ['NEWSLETTER_TRANSPORT has no host'],
      env: { NEWSLETTER_TRANSPORT: 'smtp://' },
    });
  });

  it('an SMTP server that is down: exit 9, nothing lost, and a later run sends each exactly once', async () => {
    const port = await closedPort();
    const down = await ws.run(['send-due'], { env: { NEWSLETTER_TRANSPORT: `smtp://127.0.0.1:${port}` } });
    expect(down.code, describeRun(['send-due'], down)).toBe(ExitCode.transient);
    expect(down.stderr).toMatch(/unreachable/);
    const after = await show();
    expect(after.counts).toMatchObject({ sent: 0, failed: 0, unknown: 0, claimed: 0 });
    expect(after.counts.retry + after.counts.pending).toBe(4);

    const sink = await startSmtpSink();
    try {
      const up = await ws.run(['send-due'], { env: { NEWSLETTER_TRANSPORT: sink.url } });
      expect(up, describeRun(['send-due'], up)).toMatchObject({ code: 0, stdout: '', stderr: '' });
      for (const address of addresses) expect(sink.count(address), address).toBe(1);
      expect(sink.total).toBe(4);
    } finally {
      await sink.close();
    }
    expect(await show()).toMatchObject({ status: 'sent', counts: { sent: 4, retry: 0, pending: 0 } });
  });

  it('several configuration problems are reported together, and no secret is printed', async () => {
    const result = await expectRefused(ws, ['status'], {
      code: ExitCode.config,
      stderr: [
        '4 problems',
        'NEWSLETTER_RATE "fast"',
        'NEWSLETTER_LEASE "forever"',
        'NEWSLETTER_BASE_URL "ftp://news.example.org"',
        'NEWSLETTER_SECRET is shorter than 16 characters',
      ],
      env: {
        NEWSLETTER_RATE: 'fast',
        NEWSLETTER_LEASE: 'forever',
        NEWSLETTER_BASE_URL: 'ftp://news.example.org',
        NEWSLETTER_SECRET: 'short-secret',
        NEWSLETTER_TRANSPORT: 'smtp://mailer:hunter2-password@127.0.0.1:2525',
      },
    });
    expect(result.stderr).not.toContain('short-secret');
    expect(result.stderr).not.toContain('hunter2-password');

    const database = await expectRefused(ws, ['status'], {
      code: ExitCode.config,
      stderr: ['NEWSLETTER_DATABASE', 'neither a file path nor a postgres:// URL'],
      env: { NEWSLETTER_DATABASE: 'mysql://app:db-password-42@db.example.org/news' },
    });
    expect(database.stderr).not.toContain('db-password-42');
  });

  it('--env-file is read, and the environment overrides it', async () => {
    // The workspace's environment sets NEWSLETTER_RATE=1000, so the file's value never counts.
    const envFile = await ws.write(
      'site.env',
      'NEWSLETTER_RATE=fast\nNEWSLETTER_LEASE=forever\nNEWSLETTER_SMTP_TIMEOUT=later\n',
    );
    const result = await expectRefused(ws, ['--env-file', envFile, 'status', '--json'], {
      code: ExitCode.config,
      stderr: ['2 problems', 'NEWSLETTER_LEASE "forever"', 'NEWSLETTER_SMTP_TIMEOUT "later"'],
    });
    expect(result.stderr).not.toContain('NEWSLETTER_RATE');
    await ws.json(['--env-file', envFile, 'status', '--json'], {
      env: { NEWSLETTER_LEASE: '30s', NEWSLETTER_SMTP_TIMEOUT: '10s' },
    });
  });

  it('a missing --env-file fails and names the file', async () => {
    const missing = ws.path('missing.env');
    const result = await ws.run(['--env-file', missing, 'status']);
    // Node 20 reads a script argument called --env-file itself (nodejs/node#54232) unless `--`
    // comes first: bin/newsletter.js's shebang passes it, so newsletter itself answers, with 3.
    expect(result.code, describeRun(['--env-file', missing, 'status'], result)).toBe(3);
    expect(result.stderr).toContain('does not exist');
    expect(result.stderr).toContain(missing);
    expect(result.stdout).toBe('');
  });
});

describe('the command line', () => {
  let ws: Workspace;
  beforeAll(async () => {
    ws = await workspace();
    await ws.ok(['init']);
  });

  it('an unknown command, a bad flag, --max-messages 0 and a bad id: exit 2', async () => {
    await expectRefused(ws, ['frobnicate'], {
      code: ExitCode.usage,
      stderr: ["unknown command 'frobnicate'"],
    });
    await expectRefused(ws, ['send-due', '--bogus'], {
      code: ExitCode.usage,
      stderr: ["unknown option '--bogus'"],
    });
    await expectRefused(ws, ['send-due', '--max-messages', '0'], {
      code: ExitCode.usage,
      stderr: ['--max-messages', '"0" is not a whole number above 0'],
    });
    await expectRefused(ws, ['send-due', '--max-seconds', 'soon'], {
      code: ExitCode.usage,
      stderr: ['--max-seconds'],
    });
    await expectRefused(ws, ['show', 'abc'], {
      code: ExitCode.usage,
      stderr: ['"abc" is not a newsletter id'],
    });
    await expectRefused(ws, ['schedule', '1'], { code: ExitCode.usage, stderr: ['--at WHEN or --now'] });
    await expectRefused(ws, ['create', '--subject', 'x'], {
      code: ExitCode.usage,
      stderr: ["required option '--template"],
    });
  });

  it('an unknown newsletter: exit 4', async () => {
    await expectRefused(ws, ['show', '42'], { code: ExitCode.input, stderr: ['There is no newsletter 42'] });
    await expectRefused(ws, ['cancel', '42'], { code: ExitCode.input, stderr: ['42'] });
  });

  it('--help and --version succeed', async () => {
    const help = await ws.run(['send-due', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--dry-run');
    const version = await ws.run(['--version']);
    expect(version).toMatchObject({ code: 0, stdout: '0.1.0\n' });
  });
});
