/**
 * Secrets, everywhere (issue 13, section 7), through the built CLI:
 * - `doctor` (text, --json, --verbose) with a PostgreSQL URL whose password is percent-encoded
 *   (`Pg%40Pass…`) shows it in no encoding: raw, as written, percent-encoded (either hex case),
 *   JSON-escaped, base64 at any alignment, inside AUTH PLAIN;
 * - a `%` typo in the SMTP password is exit 3 naming NEWSLETTER_TRANSPORT, not a stack trace;
 * - `migrate-db --to` with a password is refused (exit 2) before anything is opened, and says how
 *   to pass it instead; its help says so too.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, closedPort, describeRun, makeWorkspace, type Workspace } from '../helpers/cli.js';

const PG_USER = 'news';
const PG_PASSWORD = 'Pg@Pass:w/rd%never-shown';
const SMTP_PASSWORD = 'pa%ss-never-shown';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
beforeAll(() => assertBuilt());

async function workspace(): Promise<Workspace> {
  const ws = await makeWorkspace('newsletter-secret-forms-');
  cleanups.push(() => ws.cleanup());
  return ws;
}

/** Every encoding the password could leak in, by name. */
function encodings(user: string, password: string): Map<string, string> {
  const encoded = encodeURIComponent(password);
  const forms = new Map<string, string>([
    ['raw', password],
    ['percent-encoded', encoded],
    ['percent-encoded, lower-case hex', encoded.replace(/%[0-9A-F]{2}/g, (hex) => hex.toLowerCase())],
    ['JSON-escaped', JSON.stringify(password).slice(1, -1)],
    ['base64', Buffer.from(password).toString('base64').replace(/=+$/, '')],
    ['AUTH PLAIN', Buffer.from(`\0${user}\0${password}`).toString('base64')],
  ]);
  // base64 of the password at each alignment, as it would sit inside a longer base64 text.
  for (let offset = 1; offset < 3; offset++) {
    const b64 = Buffer.concat([Buffer.alloc(offset), Buffer.from(password)]).toString('base64');
    forms.set(
      `base64 at offset ${offset}`,
      b64.slice(Math.ceil((offset * 8) / 6), Math.floor(((offset + Buffer.byteLength(password)) * 8) / 6)),
    );
  }
  return forms;
}

function expectNone(where: string, text: string, forms: Map<string, string>): void {
  for (const [name, form] of forms)
    expect(text.includes(form), `${name} (${form}) found in ${where}`).toBe(false);
}

describe('a percent-encoded PostgreSQL password', () => {
  it('appears in no encoding in doctor (text, --json, --verbose), status or runs', async () => {
    const ws = await workspace();
    const port = await closedPort();
    const url = `postgres://${PG_USER}:${encodeURIComponent(PG_PASSWORD)}@127.0.0.1:${port}/news`;
    expect(url).toContain('Pg%40Pass');
    const env = { NEWSLETTER_DATABASE: url, NEWSLETTER_TRANSPORT: 'file:./outbox' };
    const cron = await ws.write('crontab', `MAILTO=ops@example.org\n* * * * * newsletter send-due\n`);
    const runs = [
      ['doctor', '--crontab', cron],
      ['doctor', '--json', '--crontab', cron],
      ['--verbose', '--log-format', 'json', 'doctor', '--crontab', cron],
      ['status'],
      ['runs', '--json'],
    ];
    const forms = encodings(PG_USER, PG_PASSWORD);
    let doctorOutput = '';
    for (const args of runs) {
      const result = await ws.run(args, { env });
      const all = `${result.stdout}\n${result.stderr}`;
      if (args.includes('doctor')) doctorOutput += all;
      expectNone(`${args.join(' ')} (exit ${result.code})`, all, forms);
    }
    // The database was named, with the password masked.
    expect(doctorOutput).toContain(`postgres://${PG_USER}:***@127.0.0.1:${port}/news`);
  });
});

describe('a malformed URL', () => {
  it('a % typo in the SMTP password is exit 3 (doctor: a problem) naming NEWSLETTER_TRANSPORT, with no stack trace and no password', async () => {
    const ws = await workspace();
    await ws.ok(['init']);
    for (const args of [['send-due'], ['doctor'], ['status']]) {
      const result = await ws.run(args, {
        env: { NEWSLETTER_TRANSPORT: `smtp://user:${SMTP_PASSWORD}@127.0.0.1:2525` },
      });
      // doctor reports a configuration problem as one of its checks, with its own exit code (8).
      expect(result.code, describeRun(args, result)).toBe(args[0] === 'doctor' ? 8 : 3);
      const said = `${result.stdout}${result.stderr}`;
      expect(said).toContain('NEWSLETTER_TRANSPORT');
      expect(said).toContain('%25');
      expect(result.stderr).not.toMatch(/^\s+at /m);
      expect(`${result.stdout}${result.stderr}`).not.toContain('ss-never-shown');
    }
  });
});

describe('a malformed PostgreSQL URL', () => {
  it('a % typo in the database password is exit 3 naming NEWSLETTER_DATABASE, not a connection attempt', async () => {
    const ws = await workspace();
    const result = await ws.run(['status'], {
      env: { NEWSLETTER_DATABASE: `postgres://news:${SMTP_PASSWORD}@127.0.0.1:1/news` },
    });
    expect(result.code, describeRun(['status'], result)).toBe(3);
    expect(result.stderr).toContain('NEWSLETTER_DATABASE');
    expect(result.stderr).toContain('%25');
    expect(result.stderr).not.toContain('ss-never-shown');
  });
});

describe('migrate-db keeps the password out of argv', () => {
  it('refuses --to with a password (exit 2), before opening anything, saying how', async () => {
    const ws = await workspace();
    await ws.ok(['init']);
    const url = `postgres://${PG_USER}:${encodeURIComponent(PG_PASSWORD)}@127.0.0.1:1/news`;
    const refused = await ws.run(['migrate-db', '--to', url]);
    expect(refused.code, describeRun(['migrate-db'], refused)).toBe(2);
    expect(refused.stderr).toContain('NEWSLETTER_MIGRATE_TO');
    expect(refused.stderr).toContain('--to-file');
    expectNone('the refusal', `${refused.stdout}${refused.stderr}`, encodings(PG_USER, PG_PASSWORD));

    const none = await ws.run(['migrate-db']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('NEWSLETTER_MIGRATE_TO');

    const both = await ws.run(['migrate-db', '--to', 'postgres://news@127.0.0.1:1/news'], {
      env: { NEWSLETTER_MIGRATE_TO: url },
    });
    expect(both.code).toBe(2);

    const help = await ws.run(['migrate-db', '--help']);
    expect(help.stdout).toContain('NEWSLETTER_MIGRATE_TO');
    expect(help.stdout).toContain('--to-file');
  });

  it('takes the URL from NEWSLETTER_MIGRATE_TO and masks its password in what it prints', async () => {
    const ws = await workspace();
    await ws.ok(['init']);
    const port = await closedPort();
    const url = `postgres://${PG_USER}:${encodeURIComponent(PG_PASSWORD)}@127.0.0.1:${port}/news`;
    const failed = await ws.run(['migrate-db'], { env: { NEWSLETTER_MIGRATE_TO: url } });
    // Unreachable: a database error, not a usage one; the target is named, masked.
    expect(failed.code, describeRun(['migrate-db'], failed)).not.toBe(2);
    expect(failed.stderr).toContain(`127.0.0.1:${port}`);
    expectNone('migrate-db', `${failed.stdout}${failed.stderr}`, encodings(PG_USER, PG_PASSWORD));
  });
});
