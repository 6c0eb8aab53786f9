/**
 * Secrets never leave: with --verbose (text and JSON logs) and forced failures (a wrong SMTP
 * password, an unreachable SMTP server, a bad DKIM key path, an unreachable database), the SMTP
 * password, the DKIM private key, the token secrets and the PostgreSQL password appear in no
 * output, no log line and no database column. Checked by searching for each of them, in every
 * form a leak could take (as is, URL-encoded, base64, AUTH PLAIN), in everything the CLI printed
 * and in a dump of every table.
 */
import path from 'node:path';
import Database from 'better-sqlite3';
import { Pool } from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, closedPort, makeWorkspace, type Workspace } from '../helpers/cli.js';
import { makeDkimKey, type TestDkimKey } from '../helpers/mail-checks.js';
import { describePostgres, type PgCluster, sharedCluster, stopSharedCluster } from '../helpers/postgres.js';
import { type SmtpSink, startSmtpSink } from '../helpers/smtp-sink.js';
import { TEST_CA_PATH } from '../helpers/tls-fixture.js';

const SMTP_USER = 'newsletter';
const SMTP_PASSWORD = 'Wr0ng-Pa55word/Zq7+x';
const TOKEN_SECRET = 'token-secret-that-must-never-show-4242';
const PREVIOUS_SECRET = 'previous-token-secret-never-shown-77';
const PG_PASSWORD = 'Pg-Pa55word-never-shown-31';

const cleanups: Array<() => Promise<void>> = [];
let key: TestDkimKey;

beforeAll(() => {
  assertBuilt();
  key = makeDkimKey();
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Every form in which each secret could leak. */
function secretForms(extra: string[] = []): Map<string, string> {
  const forms = new Map<string, string>();
  const add = (name: string, value: string) => {
    forms.set(`${name}`, value);
    forms.set(`${name} (URL-encoded)`, encodeURIComponent(value));
    forms.set(`${name} (base64)`, Buffer.from(value).toString('base64').replace(/=+$/, ''));
  };
  add('SMTP password', SMTP_PASSWORD);
  forms.set('AUTH PLAIN', Buffer.from(`\0${SMTP_USER}\0${SMTP_PASSWORD}`).toString('base64'));
  add('token secret', TOKEN_SECRET);
  add('previous token secret', PREVIOUS_SECRET);
  for (const secret of extra) add('PostgreSQL password', secret);
  const lines = key.privateKey.split('\n').filter((line) => line.length > 20 && !line.startsWith('-----'));
  for (const [i, line] of lines.entries()) forms.set(`DKIM key line ${i + 1}`, line);
  return forms;
}

function expectNoSecret(where: string, text: string, forms: Map<string, string>): void {
  for (const [name, form] of forms) {
    expect(text.includes(form), `${name} found in ${where}`).toBe(false);
  }
}

async function workspace(env: Record<string, string>): Promise<Workspace> {
  const ws = await makeWorkspace('newsletter-secrets-');
  cleanups.push(() => ws.cleanup());
  key.write(ws.path('dkim.pem'));
  Object.assign(ws.env, {
    NEWSLETTER_SECRET: TOKEN_SECRET,
    NEWSLETTER_SECRET_PREVIOUS: PREVIOUS_SECRET,
    NEWSLETTER_DKIM_KEY: 'dkim.pem',
    NEWSLETTER_DKIM_SELECTOR: 'news2026',
    // The sink with AUTH offers STARTTLS with the test CA's certificate.
    NEWSLETTER_SMTP_CA: TEST_CA_PATH,
    ...env,
  });
  return ws;
}

async function sink(): Promise<SmtpSink> {
  const started = await startSmtpSink({ auth: { user: SMTP_USER, password: 'the-right-password' } });
  cleanups.push(() => started.close());
  return started;
}

const smtpUrl = (port: number) =>
  `smtp://${SMTP_USER}:${encodeURIComponent(SMTP_PASSWORD)}@127.0.0.1:${port}`;

/**
 * Runs the failures every way they can be shown, collecting all output: the setup, send-due with
 * a wrong password and with an unreachable server (text and JSON logs, --verbose), a bad DKIM key
 * path, test-send, a bad unsubscribe token, and the views of what happened.
 */
async function provoke(ws: Workspace, smtp: SmtpSink): Promise<{ output: string; codes: number[] }> {
  const outputs: string[] = [];
  const codes: number[] = [];
  const run = async (args: string[], env: Record<string, string | undefined> = {}) => {
    const result = await ws.run(args, { env });
    outputs.push(`$ newsletter ${args.join(' ')}\n${result.stdout}\n${result.stderr}`);
    codes.push(result.code ?? -1);
    return result;
  };
  await run(['init']);
  await ws.write('readers.csv', 'email,name\nann@example.net,Ann\nbob@example.net,Bob\n');
  await run(['recipients', 'import', 'readers.csv', '--list', 'readers']);
  const template = path.join(ws.copyTemplates(), 'welcome.mjml');
  await run([
    'create',
    '--subject',
    'Hello {{name}}',
    '--template',
    template,
    '--list',
    'readers',
    '--at',
    'now',
  ]);
  const wrongPassword = { NEWSLETTER_TRANSPORT: smtpUrl(smtp.port) };
  const unreachable = { NEWSLETTER_TRANSPORT: smtpUrl(await closedPort()) };
  for (const format of ['text', 'json']) {
    await run(['--verbose', '--log-format', format, 'send-due'], wrongPassword);
    await run(['--verbose', '--log-format', format, 'send-due'], unreachable);
    await run(['--verbose', '--log-format', format, 'send-due', '--json'], wrongPassword);
  }
  await run(['--verbose', 'send-due'], { ...wrongPassword, NEWSLETTER_DKIM_KEY: 'no/such/dkim.pem' });
  await run(['--verbose', 'send-due', '--dry-run'], wrongPassword);
  await run(['--verbose', 'test-send', '1', '--to', 'me@example.net'], wrongPassword);
  await run(
    ['--verbose', 'unsubscribe', 'v1.1.1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'],
    wrongPassword,
  );
  await run(['--verbose', 'doctor', '--json'], wrongPassword);
  await run(['--verbose', 'doctor'], unreachable);
  await run(['--verbose', 'status'], wrongPassword);
  await run(['runs', '--json'], wrongPassword);
  await run(['show', '1', '--json'], wrongPassword);
  return { output: outputs.join('\n'), codes };
}

describe('secrets with SQLite', () => {
  it('appear in no output, no log line and no column of any table', async () => {
    const smtp = await sink();
    const ws = await workspace({});
    const { output, codes } = await provoke(ws, smtp);
    const forms = secretForms();

    // The failures did happen, and were reported.
    expect(codes.some((code) => code !== 0)).toBe(true);
    expect(output).toMatch(/535|[Aa]uthentication/);
    expect(output).toMatch(/ECONNREFUSED|refused/);
    expect(output).toContain('no/such/dkim.pem does not exist');
    expect(smtp.messages).toHaveLength(0);
    // Where the password would have been shown, it is masked.
    expect(output).toContain(`smtp://${SMTP_USER}:***@127.0.0.1:${smtp.port}`);
    expectNoSecret('the output', output, forms);

    const db = new Database(ws.db, { readonly: true });
    try {
      const tables = (
        db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as {
          name: string;
        }[]
      ).map((t) => t.name);
      expect(tables).toEqual(
        expect.arrayContaining(['runs', 'deliveries', 'events', 'meta', 'bounce_events']),
      );
      for (const table of tables) {
        const dump = JSON.stringify(db.prepare(`SELECT * FROM "${table}"`).all());
        expectNoSecret(`table ${table}`, dump, forms);
      }
      // The wrong password ended the runs with an error, stored without it.
      const errors = db.prepare('SELECT error FROM runs WHERE error IS NOT NULL').all() as {
        error: string;
      }[];
      expect(errors.length).toBeGreaterThan(0);
    } finally {
      db.close();
    }
  });
});

describePostgres('secrets with PostgreSQL', () => {
  let cluster: PgCluster;

  beforeAll(async () => {
    cluster = await sharedCluster();
  });

  afterAll(async () => {
    await stopSharedCluster();
  });

  it('the database password too: in no output and no column, even when the database cannot be reached', async () => {
    const smtp = await sink();
    const database = await cluster.createDatabase('secrets');
    cleanups.push(() => database.drop());
    // The test cluster trusts local connections, so the password is accepted whatever it is:
    // the CLI carries it everywhere a real one would go.
    const withPassword = database.url.replace('postgres@', `postgres:${encodeURIComponent(PG_PASSWORD)}@`);
    const ws = await workspace({ NEWSLETTER_DATABASE: withPassword });
    const { output } = await provoke(ws, smtp);
    const forms = secretForms([PG_PASSWORD]);
    expect(output).toMatch(/535|[Aa]uthentication/);
    expectNoSecret('the output', output, forms);

    // An unreachable database: its URL is shown without the password.
    const down = await ws.run(['--verbose', 'status'], {
      env: { NEWSLETTER_DATABASE: withPassword.replace(`:${cluster.port}/`, `:${await closedPort()}/`) },
    });
    expect(down.code).not.toBe(0);
    expectNoSecret('the output for an unreachable database', down.stdout + down.stderr, forms);

    const pool = new Pool({ connectionString: database.url, max: 1 });
    try {
      const tables = (
        await pool.query<{ name: string }>(
          'SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1',
        )
      ).rows.map((t) => t.name);
      expect(tables).toEqual(
        expect.arrayContaining(['runs', 'deliveries', 'events', 'meta', 'bounce_events']),
      );
      for (const table of tables) {
        const dump = JSON.stringify((await pool.query(`SELECT * FROM "${table}"`)).rows);
        expectNoSecret(`table ${table}`, dump, forms);
      }
      const runs = (await pool.query('SELECT count(*)::int AS n FROM runs')).rows[0] as { n: number };
      expect(runs.n).toBeGreaterThan(0);
    } finally {
      await pool.end();
    }
  });
});
