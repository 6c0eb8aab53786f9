/**
 * From one host to several: a SQLite database with history (a newsletter sent, one half sent,
 * a draft; sent, failed, skipped and unknown deliveries) is copied by `migrate-db` into an empty
 * PostgreSQL database. The counts match table by table and state by state, the ids are kept, the
 * SQLite file can no longer send, and two hosts then finish the half-sent newsletter on
 * PostgreSQL without sending anyone a second copy.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Pool, TypeOverrides } from 'pg';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import {
  type CliResult,
  describePostgres,
  killChildren,
  type PgCluster,
  REPO_ROOT,
  requireBuiltCli,
  runCli,
  SECRET,
  sharedCluster,
  stopSharedCluster,
} from '../helpers/postgres.js';
import { type SmtpSink, startSmtpSink } from '../helpers/smtp-sink.js';

const RECIPIENTS = 200;
const TABLES = [
  'lists',
  'subscribers',
  'memberships',
  'field_names',
  'suppressions',
  'runs',
  'newsletters',
  'newsletter_lists',
  'deliveries',
  'events',
  'meta',
];

const reader = (n: number) => `reader-${String(n).padStart(5, '0')}@example.org`;

function ok(result: CliResult, codes: number[] = [0]): string {
  expect(codes, `exit ${result.code}\n${result.stderr}`).toContain(result.code);
  return result.stdout;
}

interface DeliveryRow {
  id: number;
  newsletter_id: number;
  address: string;
  state: string;
}

describePostgres('migrate-db: SQLite → PostgreSQL, then several hosts', () => {
  let cluster: PgCluster;
  let sink: SmtpSink;
  let dir: string;

  beforeAll(async () => {
    requireBuiltCli();
    cluster = await sharedCluster();
  });

  afterEach(async () => {
    await sink?.close();
    rmSync(dir, { recursive: true, force: true });
    expect(killChildren(), 'a CLI process outlived its test').toBe(0);
  });

  afterAll(stopSharedCluster);

  it('copies everything with its ids, verifies the counts, and nobody gets a second copy', async () => {
    sink = await startSmtpSink({
      faults: [
        {
          to: reader(3),
          fault: { kind: 'rejectRcpt', code: 550, text: '5.1.1 <reader-00003>: user unknown' },
        },
        { to: reader(5), fault: { kind: 'cutAfterData' } },
      ],
    });
    dir = mkdtempSync(join(tmpdir(), 'newsletter-migrate-'));
    const sqlite = join(dir, 'news.db');
    const common = {
      NEWSLETTER_TRANSPORT: sink.url,
      NEWSLETTER_FROM: 'News <news@example.org>',
      NEWSLETTER_BASE_URL: 'https://example.org/newsletter',
      NEWSLETTER_SECRET: SECRET,
      NEWSLETTER_RATE: '100000',
      NEWSLETTER_SMTP_TIMEOUT: '5s',
    };
    const hostEnv = (host: string, database: string) => {
      const lockDir = join(dir, 'locks', host);
      mkdirSync(lockDir, { recursive: true });
      return {
        ...common,
        NEWSLETTER_DATABASE: database,
        NEWSLETTER_HOST_ID: host,
        NEWSLETTER_LOCK_DIR: lockDir,
      };
    };
    const old = (args: string[], extra: Record<string, string> = {}) =>
      runCli(args, { ...hostEnv('old-host', sqlite), ...extra }, { cwd: dir });

    // History on SQLite: newsletter 1 sent to everyone, newsletter 2 sent to the first 60, a draft.
    ok(await old(['init']));
    const csv = Array.from({ length: RECIPIENTS }, (_, i) => `${reader(i + 1)},Reader ${i + 1},Oslo`);
    writeFileSync(join(dir, 'readers.csv'), `email,name,city\n${csv.join('\n')}\n`);
    ok(await old(['recipients', 'import', join(dir, 'readers.csv'), '--list', 'readers']));
    ok(await old(['recipients', 'unsubscribe', reader(7)]));
    const create = async (extra: string[]) =>
      (
        JSON.parse(
          ok(
            await old([
              'create',
              '--subject',
              'Hello {{name}}',
              '--template',
              join(REPO_ROOT, 'templates', 'welcome.mjml'),
              '--list',
              'readers',
              '--json',
              ...extra,
            ]),
          ),
        ) as { id: number }
      ).id;
    const first = await create(['--at', 'now']);
    ok(await old(['send-due']), [8]); // one failed, one unknown: "partly failed"
    const second = await create(['--at', 'now']);
    ok(await old(['send-due', '--max-messages', '60']), [0, 8]);
    await create([]);

    const source = new Database(sqlite, { readonly: true });
    const sourceCounts = Object.fromEntries(
      TABLES.map((table) => [
        table,
        (source.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n,
      ]),
    );
    const sourceRows = source
      .prepare('SELECT id, newsletter_id, address, state FROM deliveries ORDER BY id')
      .all() as DeliveryRow[];
    source.close();
    expect(sourceRows.filter((r) => r.newsletter_id === second).length).toBeGreaterThanOrEqual(60);
    expect(new Set(sourceRows.map((r) => r.state))).toEqual(
      new Set(['sent', 'failed', 'skipped', 'unknown']),
    );
    const sentBefore = sink.total;

    // The copy.
    const database = await cluster.createDatabase('migrated');
    const types = new TypeOverrides();
    types.setTypeParser(20, (value: string) => Number(value));
    const pool = new Pool({ connectionString: database.url, max: 2, allowExitOnIdle: true, types });
    pool.on('error', () => undefined);
    try {
      // A password on the command line (visible to every local user in `ps`) is refused, and not
      // echoed in the refusal.
      // The test cluster trusts local connections: any password is accepted, and carried as a real one.
      const password = 'migrate-Pa55word-never-shown';
      const withPassword = database.url.replace('postgres@', `postgres:${password}@`);
      expect(withPassword).toContain(password);
      const inArgv = await old(['migrate-db', '--to', withPassword]);
      expect(inArgv.code).toBe(2);
      expect(inArgv.stderr).toContain('NEWSLETTER_MIGRATE_TO');
      expect(inArgv.stderr).not.toContain(password);

      const report = JSON.parse(
        ok(await old(['migrate-db', '--json'], { NEWSLETTER_MIGRATE_TO: withPassword })),
      ) as {
        tables: { name: string; source: number; target: number }[];
        deliveryStates: { name: string; source: number; target: number }[];
        notCopied: string[];
        unboundHostId: string | null;
      };
      expect(report.unboundHostId).toBe('old-host');
      expect(report.notCopied).toEqual(['host_bound_at', 'host_id']);
      for (const table of TABLES) {
        const [row] = (await pool.query<{ n: number }>(`SELECT count(*) AS n FROM ${table}`)).rows;
        const expected = table === 'meta' ? sourceCounts[table]! - 2 : sourceCounts[table]!;
        expect({ table, n: row?.n }).toEqual({ table, n: expected });
        expect(report.tables.find((t) => t.name === table)).toEqual({
          name: table,
          source: expected,
          target: expected,
        });
      }
      // Same rows, same ids, same states.
      const copied = (
        await pool.query<DeliveryRow>('SELECT id, newsletter_id, address, state FROM deliveries ORDER BY id')
      ).rows;
      expect(copied).toEqual(sourceRows);
      for (const state of report.deliveryStates) expect(state.source).toBe(state.target);

      // Into a database that is no longer empty: refused, nothing changes.
      const targetFile = join(dir, 'migrate-to.url');
      writeFileSync(targetFile, `${withPassword}\n`, { mode: 0o600 });
      const again = await old(['migrate-db', '--to-file', targetFile]);
      expect(again.stderr).not.toContain(password);
      expect(again.code).toBe(5);
      expect(again.stderr).toMatch(/not empty/);
      // The SQLite file no longer sends: a crontab line left behind meets the clone guard.
      const stale = await old(['send-due']);
      expect(stale.code, stale.stderr).toBe(7);
      expect(sink.total).toBe(sentBefore);

      // Two hosts on PostgreSQL finish newsletter 2 (init first, as the docs say; it changes nothing).
      ok(await runCli(['init'], hostEnv('new-host-1', database.url), { cwd: dir }));
      const finishing = await Promise.all(
        ['new-host-1', 'new-host-2'].map((host) =>
          runCli(['send-due'], hostEnv(host, database.url), { cwd: dir }),
        ),
      );
      for (const result of finishing) ok(result, [0, 8]);

      const after = (
        await pool.query<DeliveryRow>('SELECT id, newsletter_id, address, state FROM deliveries ORDER BY id')
      ).rows;
      // Nothing that was in the ledger changed; new rows only for recipients never claimed.
      const maxOld = Math.max(...sourceRows.map((r) => r.id));
      expect(after.filter((r) => r.id <= maxOld)).toEqual(sourceRows);
      const oldKeys = new Set(sourceRows.map((r) => `${r.newsletter_id}:${r.address}`));
      for (const row of after.filter((r) => r.id > maxOld)) {
        expect(oldKeys.has(`${row.newsletter_id}:${row.address}`)).toBe(false);
      }
      const status = (
        await pool.query<{ id: number; status: string }>('SELECT id, status FROM newsletters ORDER BY id')
      ).rows;
      expect(status.map((s) => s.status)).toEqual(['sent', 'sent', 'draft']);
      const secondRows = after.filter((r) => r.newsletter_id === second);
      expect(secondRows).toHaveLength(RECIPIENTS);

      // The SMTP server: per newsletter, nobody got two copies; newsletter 2 reached everyone
      // it should (not the unsubscribed, not the suppressed) exactly once, across both databases.
      for (const newsletter of [first, second]) {
        const perAddress = new Map<string, number>();
        for (const message of sink.messages.filter((m) => m.messageId?.startsWith(`<n${newsletter}.`))) {
          for (const to of message.to) perAddress.set(to, (perAddress.get(to) ?? 0) + 1);
        }
        expect([...perAddress.values()].every((n) => n === 1)).toBe(true);
        if (newsletter === second) {
          expect(perAddress.has(reader(7))).toBe(false); // unsubscribed
          expect(perAddress.has(reader(3))).toBe(false); // suppressed after its 5.1.1 on newsletter 1
          expect(perAddress.size).toBe(RECIPIENTS - 2);
        }
      }
    } finally {
      await pool.end();
      await database.drop();
    }
  }, 90_000);
});
