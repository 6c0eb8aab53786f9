/**
 * A real PostgreSQL server for the tests, owned by the test run: a throwaway cluster (started by
 * test/support/postgres-server.js, shared with the benchmark) on 127.0.0.1, one fresh database
 * per test (or per file), stopped and removed at the end. Never a mock.
 *
 * Durability is off (fsync, synchronous_commit, full_page_writes): this cluster lives for one test
 * run. Nothing in the store depends on those settings.
 *
 * When the binaries are missing, the PostgreSQL suites fail with one test that says what to
 * install (describePostgres): nothing passes by being skipped. .ci/run installs the package.
 *
 * Cleanup: `stopSharedCluster()` in afterAll; and, in case the test process is killed first, the
 * server's detached watchdog stops it and removes its folder once this process is gone.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool, TypeOverrides } from 'pg';
import { describe, it } from 'vitest';
import type { Store } from '../../src/store/store.js';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { findPostgres, type PostgresAvailability, startPostgresServer } from '../support/postgres-server.js';
import type { StoreFactory, StoreHandle } from './store-fixtures.js';

export type { PostgresAvailability };

export const POSTGRES: PostgresAvailability = findPostgres();

/** What a run without a PostgreSQL server says: the suite fails, it never passes by skipping. */
export const POSTGRES_MISSING = `PostgreSQL tests cannot run: ${POSTGRES.ok ? '' : POSTGRES.reason}. Install the server binaries with \`apt-get install postgresql\` (as .ci/run does); the tests start their own throwaway cluster.`;

/** `describe` when a server can be started here; otherwise one failing test that says why. */
export function describePostgres(title: string, body: () => void): void {
  if (POSTGRES.ok) describe(title, body);
  else
    describe(title, () => {
      it('needs a PostgreSQL server', () => {
        throw new Error(POSTGRES_MISSING);
      });
    });
}

export interface PgDatabase {
  name: string;
  /** postgres://postgres@127.0.0.1:PORT/NAME */
  url: string;
  drop(): Promise<void>;
}

export interface PgCluster {
  port: number;
  dir: string;
  /** The `postgres` maintenance database. */
  adminUrl: string;
  createDatabase(prefix?: string): Promise<PgDatabase>;
  /** `pg_ctl restart -m fast`, same port and data: every session of every client ends. */
  restart(): Promise<void>;
  /** `pg_ctl stop -m fast`, keeping the data; `startAgain()` brings it back on the same port. */
  stopFast(): Promise<void>;
  startAgain(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts a new cluster. Throws (never skips) if it cannot: a broken server must fail the run.
 * Durability is off: this cluster lives for one test run, and nothing in the store depends on it.
 */
export async function startCluster(): Promise<PgCluster> {
  const server = await startPostgresServer({
    label: 'test',
    settings: ['fsync=off', 'synchronous_commit=off', 'full_page_writes=off', 'max_connections=200'],
  });
  const adminUrl = server.url();
  const admin = new Pool({ connectionString: adminUrl, max: 2, allowExitOnIdle: true });
  admin.on('error', () => undefined);
  let counter = 0;
  let stopped = false;

  return {
    port: server.port,
    dir: server.dir,
    adminUrl,
    async createDatabase(prefix = 'nl') {
      counter += 1;
      const name = `${prefix}_${process.pid}_${counter}_${Math.random().toString(36).slice(2, 8)}`;
      await admin.query(`CREATE DATABASE "${name}"`);
      return {
        name,
        url: server.url(name),
        async drop() {
          if (stopped) return;
          await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(() => undefined);
        },
      };
    },
    restart: () => server.restart(),
    stopFast: () => server.stopFast(),
    startAgain: () => server.startAgain(),
    async stop() {
      if (stopped) return;
      stopped = true;
      await admin.end().catch(() => undefined);
      await server.stop();
    },
  };
}

let shared: Promise<PgCluster> | null = null;

/** One cluster per test process, started on first use. */
export function sharedCluster(): Promise<PgCluster> {
  shared ??= startCluster();
  return shared;
}

export async function stopSharedCluster(): Promise<void> {
  if (!shared) return;
  const cluster = await shared.catch(() => null);
  shared = null;
  await cluster?.stop();
}

/** A fresh, empty, migrated database per `open()`, as the SQLite factory gives a fresh file. */
export function postgresFactory(): StoreFactory {
  return {
    name: 'postgres',
    async open(): Promise<StoreHandle> {
      const cluster = await sharedCluster();
      const database = await cluster.createDatabase('contract');
      const store = await PostgresStore.open(database.url, { readonly: false });
      await store.migrate();
      const others: Store[] = [];
      return {
        store,
        location: database.url,
        async connect() {
          const other = await PostgresStore.open(database.url, { readonly: false });
          others.push(other);
          return other;
        },
        async cleanup() {
          for (const other of others) await other.close().catch(() => undefined);
          await store.close().catch(() => undefined);
          await database.drop();
        },
      };
    },
  };
}

// ---- the built CLI on several simulated hosts -------------------------------------------------

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(REPO_ROOT, 'bin', 'newsletter.js');
const DIST_MAIN = join(REPO_ROOT, 'dist', 'cli', 'main.js');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** The e2e tests run `node bin/newsletter.js`, i.e. dist/. */
export function requireBuiltCli(): void {
  if (!existsSync(DIST_MAIN)) {
    throw new Error('dist/ is missing: run `npm run build` (npm test does) before the multihost tests.');
  }
  const stale = newestMtime(join(REPO_ROOT, 'src')) > newestMtime(join(REPO_ROOT, 'dist'));
  // A warning, not a failure: other people may be editing src/ while these tests run.
  if (stale) console.warn('dist/ is older than src/: these tests run the last build (`npm run build`).');
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliChild {
  pid: number;
  child: ChildProcess;
  exited: Promise<CliResult>;
  /** Resolves once stderr contains `text` (a failpoint's `failpoint:NAME`). */
  stderrIncludes(text: string): Promise<void>;
}

const children = new Set<ChildProcess>();

/**
 * The CLI as cron starts it: no terminal, a clean environment (PATH plus what the test passes),
 * a hard timeout that kills it. Every child is tracked so that `killChildren()` leaves nothing.
 */
export function startCli(
  args: string[],
  env: Record<string, string>,
  options: { cwd: string; timeoutMs?: number },
): CliChild {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: options.cwd,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: options.cwd, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  const waiters: { text: string; resolve: () => void }[] = [];
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    for (const waiter of waiters.filter((w) => stderr.includes(w.text))) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve();
    }
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
  const exited = new Promise<CliResult>((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      for (const waiter of waiters) waiter.resolve();
      resolve({ code, signal, stdout, stderr });
    });
  });
  return {
    pid: child.pid!,
    child,
    exited,
    stderrIncludes(text) {
      if (stderr.includes(text)) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ text, resolve }));
    },
  };
}

export function runCli(
  args: string[],
  env: Record<string, string>,
  options: { cwd: string; timeoutMs?: number },
): Promise<CliResult> {
  return startCli(args, env, options).exited;
}

/** SIGKILLs (and SIGCONTs) every CLI child still alive: a stopped child must not outlive its test. */
export function killChildren(): number {
  const left = children.size;
  for (const child of children) {
    child.kill('SIGKILL');
    child.kill('SIGCONT');
  }
  return left;
}

export interface HostsWorkspace {
  dir: string;
  database: PgDatabase;
  newsletterId: number;
  /** The environment of one simulated host: its own NEWSLETTER_HOST_ID and lock folder. */
  env(host: string, extra?: Record<string, string>): Record<string, string>;
  /** Reads the ledger directly (never writes behind the CLI's back). */
  query<R>(text: string, values?: unknown[]): Promise<R[]>;
  close(): Promise<void>;
}

export const SECRET = 'multihost-test-secret-0123456789';

/**
 * A PostgreSQL database with `recipients` subscribers (`reader-00001@example.org`…) in the list
 * `readers` and one newsletter (templates/welcome.mjml) scheduled now, set up through the CLI.
 */
export async function hostsWorkspace(options: {
  cluster: PgCluster;
  recipients: number;
  transport: string;
  env?: Record<string, string>;
}): Promise<HostsWorkspace> {
  const dir = mkdtempSync(join(tmpdir(), 'newsletter-hosts-'));
  cpSync(join(REPO_ROOT, 'templates'), join(dir, 'templates'), { recursive: true });
  const database = await options.cluster.createDatabase('hosts');
  // bigint as a number, as the store reads it (ids, counts, epoch milliseconds).
  const types = new TypeOverrides();
  types.setTypeParser(20, (value: string) => Number(value));
  const pool = new Pool({ connectionString: database.url, max: 2, allowExitOnIdle: true, types });
  pool.on('error', () => undefined);
  const env = (host: string, extra: Record<string, string> = {}) => {
    const lockDir = join(dir, 'locks', host);
    mkdirSync(lockDir, { recursive: true });
    return {
      NEWSLETTER_DATABASE: database.url,
      NEWSLETTER_TRANSPORT: options.transport,
      NEWSLETTER_FROM: 'News <news@example.org>',
      NEWSLETTER_BASE_URL: 'https://example.org/newsletter',
      NEWSLETTER_SECRET: SECRET,
      NEWSLETTER_RATE: '100000',
      NEWSLETTER_HOST_ID: host,
      NEWSLETTER_LOCK_DIR: lockDir,
      ...options.env,
      ...extra,
    };
  };
  const cli = async (args: string[]) => {
    const result = await runCli(args, env('setup'), { cwd: dir });
    if (result.code !== 0)
      throw new Error(`newsletter ${args.join(' ')} failed (${result.code}):\n${result.stderr}`);
    return result.stdout;
  };
  await cli(['init']);
  const rows = Array.from(
    { length: options.recipients },
    (_, i) => `reader-${String(i + 1).padStart(5, '0')}@example.org,Reader ${i + 1}`,
  );
  writeFileSync(join(dir, 'readers.csv'), `email,name\n${rows.join('\n')}\n`);
  await cli(['recipients', 'import', 'readers.csv', '--list', 'readers']);
  const created = JSON.parse(
    await cli([
      'create',
      '--subject',
      'Hello {{name}}',
      '--template',
      'templates/welcome.mjml',
      '--list',
      'readers',
      '--at',
      'now',
      '--json',
    ]),
  ) as { id: number };
  return {
    dir,
    database,
    newsletterId: created.id,
    env,
    async query<R>(text: string, values: unknown[] = []) {
      return (await pool.query(text, values)).rows as R[];
    },
    async close() {
      await pool.end().catch(() => undefined);
      await database.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Resolves once the database's clock has passed `until` (epoch ms): a wait computed, not guessed. */
export async function waitUntilDatabaseTime(workspace: HostsWorkspace, until: number): Promise<void> {
  for (;;) {
    const [row] = await workspace.query<{ ms: number }>(
      'SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms',
    );
    const left = until - row!.ms;
    if (left < 0) return;
    await new Promise((resolve) => setTimeout(resolve, left + 1));
  }
}
