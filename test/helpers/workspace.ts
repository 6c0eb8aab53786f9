/**
 * A workspace for end-to-end tests: a fresh folder (fs.mkdtemp) with its own SQLite database,
 * the sample templates copied in, a CSV of N subscribers imported into a list, and one newsletter
 * created and scheduled `--now`, all through the built CLI. Commands then run there with a clean
 * environment: PATH, HOME (the folder) and NEWSLETTER_* only.
 *
 * The ledger can also be read directly, read-only, to compare it before and after something
 * happens; tests never write to it behind the CLI's back.
 */
import { copyFile, cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import type { DeliveryRow } from '../../src/store/rows.js';
import { afterEach } from 'vitest';
import { type CliProcess, type CliResult, reapChildren, runCli, startCli } from './cli-process.js';
import { type SmtpSink, type SmtpSinkOptions, startSmtpSink } from './smtp-sink.js';

const TEMPLATES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../templates');

export const LIST = 'readers';

export interface WorkspaceOptions {
  /** How many subscribers the CSV has. */
  recipients: number;
  /** NEWSLETTER_TRANSPORT, e.g. a sink's `smtp://127.0.0.1:PORT`. */
  transport: string;
  /** More NEWSLETTER_* variables (they override the defaults below). */
  env?: Record<string, string>;
}

export interface Counts {
  audience: number;
  sent: number;
  failed: number;
  skipped: number;
  unknown: number;
  retry: number;
  claimed: number;
  pending: number;
}

export interface ShownNewsletter {
  id: number;
  status: string;
  counts: Counts;
  attention: { address: string; state: string; reply: string | null; messageId: string }[];
}

export interface RunJson {
  id: number;
  hostId: string;
  pid: number;
  startedAt: string;
  leaseUntil: string;
  endedAt: string | null;
  outcome: string | null;
  counts: { sent: number; failed: number; retry: number; unknown: number; skipped: number };
  error: string | null;
}

/** A ledger row as the SQLite store keeps it, for this workspace's one newsletter. */
export type LedgerRow = Omit<DeliveryRow, 'newsletter_id'>;

export interface Workspace {
  dir: string;
  dbPath: string;
  /** The environment every command gets (before per-call additions). */
  env: Record<string, string>;
  newsletterId: number;
  /** The subscribers' addresses, in import (subscriber id) order. */
  addresses: string[];
  /** Runs a command to its end. `env` adds to (or overrides) the workspace's environment. */
  run(args: readonly string[], env?: Record<string, string>, timeoutMs?: number): Promise<CliResult>;
  /** Starts a command and returns at once. */
  start(args: readonly string[], env?: Record<string, string>, timeoutMs?: number): CliProcess;
  /** Like `run`, but throws with its output unless the command exits 0. */
  ok(args: readonly string[], env?: Record<string, string>): Promise<CliResult>;
  /** `show ID --json`. */
  show(): Promise<ShownNewsletter>;
  /** `runs --json`, newest first. */
  runs(): Promise<RunJson[]>;
  /** Every ledger row of the newsletter, read directly (read-only), by id. */
  ledger(): LedgerRow[];
  /** Any read-only query against the database. */
  query<T>(sql: string, ...params: unknown[]): T[];
  remove(): Promise<void>;
}

export function addressOf(index: number): string {
  return `reader${String(index + 1).padStart(4, '0')}@example.net`;
}

/** Environment for a database at `dbPath`: what a crontab line would set, for tests. */
export function baseEnv(dir: string, dbPath: string, transport: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: dir,
    NEWSLETTER_DATABASE: dbPath,
    NEWSLETTER_TRANSPORT: transport,
    NEWSLETTER_HOST_ID: 'host-a',
    NEWSLETTER_FROM: 'Example News <news@example.org>',
    NEWSLETTER_BASE_URL: 'https://example.org/newsletter',
    NEWSLETTER_SECRET: 'test-secret-0123456789abcdef',
    NEWSLETTER_RATE: '2000',
    NEWSLETTER_RETRY_AFTER: '0s',
    NEWSLETTER_BATCH: '5',
    NEWSLETTER_SMTP_TIMEOUT: '10s',
  };
}

export async function createWorkspace(options: WorkspaceOptions): Promise<Workspace> {
  const dir = await mkdtemp(path.join(tmpdir(), 'newsletter-e2e-'));
  const dbPath = path.join(dir, 'newsletter.db');
  const env = { ...baseEnv(dir, dbPath, options.transport), ...options.env };
  const workspace = openWorkspace(dir, dbPath, env, 0, []);
  try {
    await cp(TEMPLATES, path.join(dir, 'templates'), { recursive: true });
    const addresses = Array.from({ length: options.recipients }, (_, i) => addressOf(i));
    const csv = ['email,name', ...addresses.map((address, i) => `${address},Reader ${i + 1}`)].join('\n');
    await writeFile(path.join(dir, 'subscribers.csv'), `${csv}\n`);
    await workspace.ok(['init']);
    await workspace.ok(['recipients', 'import', 'subscribers.csv', '--list', LIST]);
    const created = await workspace.ok([
      'create',
      '--subject',
      'Hello {{name}}',
      '--template',
      'templates/welcome.mjml',
      '--list',
      LIST,
      '--json',
    ]);
    const newsletterId = (JSON.parse(created.stdout) as { id: number }).id;
    await workspace.ok(['schedule', String(newsletterId), '--now']);
    return openWorkspace(dir, dbPath, env, newsletterId, addresses);
  } catch (error) {
    await workspace.remove();
    throw error;
  }
}

/**
 * A second folder holding a copy of the workspace's database, as a cloned server would have
 * (restored from an image or a backup). The copy is taken while no command runs.
 */
export async function cloneWorkspace(original: Workspace, env: Record<string, string>): Promise<Workspace> {
  const dir = await mkdtemp(path.join(tmpdir(), 'newsletter-e2e-clone-'));
  const dbPath = path.join(dir, 'newsletter.db');
  await copyFile(original.dbPath, dbPath);
  return openWorkspace(
    dir,
    dbPath,
    { ...original.env, HOME: dir, NEWSLETTER_DATABASE: dbPath, ...env },
    original.newsletterId,
    original.addresses,
  );
}

function openWorkspace(
  dir: string,
  dbPath: string,
  env: Record<string, string>,
  newsletterId: number,
  addresses: string[],
): Workspace {
  const options = (extra: Record<string, string> | undefined, timeoutMs: number | undefined) => ({
    cwd: dir,
    env: { ...env, ...extra },
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  });
  const query = <T>(sql: string, ...params: unknown[]): T[] => {
    const db = new Database(dbPath, { readonly: true, fileMustExist: true });
    try {
      return db.prepare(sql).all(...params) as T[];
    } finally {
      db.close();
    }
  };
  const workspace: Workspace = {
    dir,
    dbPath,
    env,
    newsletterId,
    addresses,
    run: (args, extra, timeoutMs) => runCli(args, options(extra, timeoutMs)),
    start: (args, extra, timeoutMs) => startCli(args, options(extra, timeoutMs)),
    async ok(args, extra) {
      const result = await runCli(args, options(extra, undefined));
      if (result.code !== 0) {
        throw new Error(
          `newsletter ${args.join(' ')} exited ${result.code ?? result.signal}:\n${result.stdout}${result.stderr}`,
        );
      }
      return result;
    },
    async show() {
      return JSON.parse((await workspace.ok(['show', String(newsletterId), '--json'])).stdout);
    },
    async runs() {
      return JSON.parse((await workspace.ok(['runs', '--json'])).stdout);
    },
    ledger: () =>
      query<LedgerRow>(
        `SELECT id, address, state, run_id, attempts, next_attempt_at, message_id, smtp_reply, queue_id,
                reason, updated_at
         FROM deliveries WHERE newsletter_id = ? ORDER BY id`,
        newsletterId,
      ),
    query,
    remove: () => rm(dir, { recursive: true, force: true }),
  };
  return workspace;
}

/**
 * Runs `send-due` until the newsletter is `sent` (every recipient has an outcome, `unknown`
 * included), at most `maxRuns` times. Each run must exit with one of `allowed` (0, or 8 when it
 * reports what crashed runs left unknown) and none may be refused by the lock: after a crash the
 * next run takes over a dead owner's lock at once.
 */
export async function sendUntilSent(
  workspace: Workspace,
  options: { env?: Record<string, string>; maxRuns?: number; allowed?: number[] } = {},
): Promise<CliResult[]> {
  const allowed = options.allowed ?? [0, 8];
  const results: CliResult[] = [];
  for (let i = 0; i < (options.maxRuns ?? 10); i++) {
    const result = await workspace.run(['send-due'], options.env);
    results.push(result);
    if (result.code === null || !allowed.includes(result.code)) {
      throw new Error(
        `send-due run ${i + 1} exited ${result.code ?? result.signal}:\n${result.stdout}${result.stderr}`,
      );
    }
    if ((await workspace.show()).status === 'sent') return results;
  }
  throw new Error(`the newsletter was not sent after ${options.maxRuns ?? 10} runs`);
}

/**
 * Polls `check` until it returns true (no fixed sleeps: the wait ends as soon as the condition
 * holds), failing after `timeoutMs`.
 */
export async function waitUntil(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
  intervalMs = 20,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * For the promise tests: the SMTP sinks and workspaces a test starts through this are closed and
 * removed after it, and a CLI process still running then fails the test (a run that outlived its
 * test would blur the next one's counts).
 */
export function perTest() {
  const sinks: SmtpSink[] = [];
  const workspaces: Workspace[] = [];
  afterEach(async () => {
    const left = await reapChildren();
    for (const sink of sinks.splice(0)) await sink.close();
    for (const workspace of workspaces.splice(0)) await workspace.remove();
    if (left.length > 0) throw new Error(`children left running: ${left.join(', ')}`);
  });
  return {
    async sink(options?: SmtpSinkOptions): Promise<SmtpSink> {
      const sink = await startSmtpSink(options);
      sinks.push(sink);
      return sink;
    },
    async workspace(options: WorkspaceOptions): Promise<Workspace> {
      return this.add(await createWorkspace(options));
    },
    /** A workspace made another way (cloneWorkspace), removed like the others. */
    add(workspace: Workspace): Workspace {
      workspaces.push(workspace);
      return workspace;
    },
  };
}
