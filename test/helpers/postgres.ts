/**
 * A real PostgreSQL server for the tests, owned by the test run: a throwaway cluster made with
 * `initdb` in a temp folder, started with `pg_ctl` on 127.0.0.1 and a free port (its unix socket
 * in the same folder), one fresh database per test (or per file), stopped and removed at the end.
 * Never a mock.
 *
 * The binaries come from Debian's `postgresql` package (/usr/lib/postgresql/<version>/bin), or
 * from PATH. initdb refuses to run as root, so as root the cluster belongs to the `postgres` user
 * (created by that package) and every server command runs through `runuser -u postgres --`.
 *
 * Durability is off (fsync, synchronous_commit, full_page_writes): this cluster lives for one test
 * run. Nothing in the store depends on those settings.
 *
 * When the binaries are missing, the PostgreSQL suites are skipped and say so, loudly, with the
 * reason; with CI=true they fail instead (CI must never pass without having run them: .ci/run
 * installs the package).
 *
 * Cleanup: `stopSharedCluster()` in afterAll; and, in case the test process is killed first, a
 * small detached watchdog process stops the server and removes the folder once the process that
 * started it is gone.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import {
  chownSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Pool, TypeOverrides } from 'pg';
import { describe, it } from 'vitest';
import type { Store } from '../../src/engine/store.js';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import type { StoreFactory, StoreHandle } from './store-fixtures.js';

const run = promisify(execFile);

export type PostgresAvailability =
  | { ok: true; bin: string; runAs: { user: string; uid: number; gid: number } | null }
  | { ok: false; reason: string };

const INSTALL_HINT =
  "install Debian's `postgresql` package (`apt-get install -y postgresql`), as .ci/run does, then run the tests again";

function findBinDir(): string | null {
  const base = '/usr/lib/postgresql';
  if (existsSync(base)) {
    const versions = readdirSync(base)
      .filter((v) => existsSync(join(base, v, 'bin', 'initdb')) && existsSync(join(base, v, 'bin', 'pg_ctl')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return join(base, versions[0], 'bin');
  }
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir && existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl'))) return dir;
  }
  return null;
}

function detect(): PostgresAvailability {
  const bin = findBinDir();
  if (!bin) {
    return {
      ok: false,
      reason: `the PostgreSQL server binaries (initdb, pg_ctl) are not installed: neither /usr/lib/postgresql/*/bin nor PATH has them; ${INSTALL_HINT}`,
    };
  }
  if (process.getuid?.() !== 0) return { ok: true, bin, runAs: null };
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    execFileSync('runuser', ['--help'], { stdio: 'ignore' });
    return { ok: true, bin, runAs: { user: 'postgres', uid, gid } };
  } catch {
    return {
      ok: false,
      reason:
        'the tests run as root, and initdb refuses root, but there is no `postgres` user (or no runuser) to run the server as; ' +
        INSTALL_HINT,
    };
  }
}

export const POSTGRES: PostgresAvailability = detect();

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
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

function command(availability: Extract<PostgresAvailability, { ok: true }>, tool: string, args: string[]) {
  const file = join(availability.bin, tool);
  return availability.runAs
    ? { file: 'runuser', args: ['-u', availability.runAs.user, '--', file, ...args] }
    : { file, args };
}

/** Starts a new cluster. Throws (never skips) if it cannot: a broken server must fail the run. */
export async function startCluster(): Promise<PgCluster> {
  if (!POSTGRES.ok) throw new Error(`PostgreSQL is not available: ${POSTGRES.reason}`);
  const pg = POSTGRES;
  const dir = mkdtempSync(join(tmpdir(), 'newsletter-pg-'));
  if (pg.runAs) chownSync(dir, pg.runAs.uid, pg.runAs.gid);
  const data = join(dir, 'data');
  const log = join(dir, 'server.log');
  const initdb = command(pg, 'initdb', [
    '-D',
    data,
    '-A',
    'trust',
    '-U',
    'postgres',
    '-E',
    'UTF8',
    '--locale=C',
    '--no-sync',
  ]);
  try {
    await run(initdb.file, initdb.args, { cwd: dir });
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed: ${(error as { stderr?: string }).stderr ?? String(error)}`);
  }

  let port = 0;
  let lastError = '';
  for (let attempt = 0; attempt < 3 && port === 0; attempt++) {
    const candidate = await freePort();
    const options = [
      '-c listen_addresses=127.0.0.1',
      `-p ${candidate}`,
      `-k ${dir}`,
      '-c fsync=off',
      '-c synchronous_commit=off',
      '-c full_page_writes=off',
      '-c max_connections=200',
    ].join(' ');
    const start = command(pg, 'pg_ctl', ['-D', data, '-l', log, '-w', '-t', '60', '-o', options, 'start']);
    try {
      await run(start.file, start.args, { cwd: dir });
      port = candidate;
    } catch (error) {
      lastError = `${(error as { stderr?: string }).stderr ?? String(error)}\n${readLog(log)}`;
    }
  }
  if (port === 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`pg_ctl could not start the test server:\n${lastError}`);
  }

  const stopArgs = command(pg, 'pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
  const watchdog = startWatchdog(stopArgs, dir);
  const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const admin = new Pool({ connectionString: adminUrl, max: 2, allowExitOnIdle: true });
  admin.on('error', () => undefined);
  let counter = 0;
  let stopped = false;

  return {
    port,
    dir,
    adminUrl,
    async createDatabase(prefix = 'nl') {
      counter += 1;
      const name = `${prefix}_${process.pid}_${counter}_${Math.random().toString(36).slice(2, 8)}`;
      await admin.query(`CREATE DATABASE "${name}"`);
      return {
        name,
        url: `postgres://postgres@127.0.0.1:${port}/${name}`,
        async drop() {
          if (stopped) return;
          await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(() => undefined);
        },
      };
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await admin.end().catch(() => undefined);
      await run(stopArgs.file, stopArgs.args, { cwd: dir }).catch(() => undefined);
      watchdog.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function readLog(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-20).join('\n');
  } catch {
    return '';
  }
}

/**
 * A detached process that waits for this one to end, then stops the server and removes its
 * folder: a test process killed mid-run (or a worker ended by vitest) leaves no server behind.
 */
function startWatchdog(stop: { file: string; args: string[] }, dir: string): { kill(): void } {
  const script = `
    const { execFileSync } = require('node:child_process');
    const { rmSync } = require('node:fs');
    const [parent, stop, dir] = [Number(process.argv[1]), JSON.parse(process.argv[2]), process.argv[3]];
    setInterval(() => {
      try { process.kill(parent, 0); return; } catch {}
      try { execFileSync(stop.file, stop.args, { stdio: 'ignore', cwd: dir }); } catch {}
      rmSync(dir, { recursive: true, force: true });
      process.exit(0);
    }, 500);`;
  const child = spawn(process.execPath, ['-e', script, String(process.pid), JSON.stringify(stop), dir], {
    detached: true,
    stdio: 'ignore',
  });
  child.unref();
  return {
    kill() {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
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
