/**
 * The built CLI as a child process, the way cron runs it: `node bin/newsletter.js` with a clean
 * environment (PATH, HOME and what the test passes; never the developer's NEWSLETTER_*), stdin
 * closed and stdout/stderr piped, so the CLI sees no terminal. A hard timeout kills the child's
 * whole process group, so a hung command fails its test instead of the suite.
 *
 * `makeWorkspace()` gives each test its own temporary folder, database path and configuration.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BIN = path.join(REPO_ROOT, 'bin', 'newsletter.js');
export const TEMPLATES = path.join(REPO_ROOT, 'templates');
const DIST_MAIN = path.join(REPO_ROOT, 'dist', 'cli', 'main.js');

export interface CliResult {
  /** The exit code; null when the child was killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** `undefined` removes a variable that the workspace would otherwise pass. */
export type EnvPatch = Record<string, string | undefined>;

export interface RunOptions {
  cwd?: string;
  env?: EnvPatch;
  /** Arguments for node itself, before the script (e.g. `--import` of a tracer). */
  nodeArgs?: string[];
  timeoutMs?: number;
  /** Written to the child's stdin, which is then closed (`bounces receive`); none: no stdin. */
  input?: string | Buffer;
}

const DEFAULT_TIMEOUT_MS = 20_000;

export function runCli(args: readonly string[], options: RunOptions = {}): Promise<CliResult> {
  const env: Record<string, string> = {};
  if (process.env.PATH !== undefined) env.PATH = process.env.PATH;
  if (process.env.HOME !== undefined) env.HOME = process.env.HOME;
  for (const [key, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(options.nodeArgs ?? []), '--', BIN, ...args], {
      cwd: options.cwd ?? REPO_ROOT,
      env,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      // Its own process group, so that the timeout also kills whatever it started (the demo does).
      detached: true,
    });
    if (options.input !== undefined && child.stdin) {
      // A child that exits before reading it all must not fail the test with EPIPE.
      child.stdin.on('error', () => {});
      child.stdin.end(options.input);
    }
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => err.push(chunk));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const result: CliResult = {
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      };
      if (timedOut) {
        reject(
          new Error(
            `newsletter ${args.join(' ')} did not finish within ${timeoutMs} ms and was killed\n` +
              `stdout: ${result.stdout}\nstderr: ${result.stderr}`,
          ),
        );
        return;
      }
      resolve(result);
    });
  });
}

/** What a failed expectation on a CLI run should show: the command and everything it said. */
export function describeRun(args: readonly string[], result: CliResult): string {
  return `newsletter ${args.join(' ')} → exit ${result.code ?? result.signal}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`;
}

export interface CsvOptions {
  /** File name inside the workspace; default `subscribers-N.csv`. */
  name?: string;
  /** Addresses are `${prefix}${i}@${domain}`. */
  prefix?: string;
  domain?: string;
}

export interface Workspace {
  dir: string;
  /** The SQLite file (not created until `init`). */
  db: string;
  /** The configuration every run gets, before `options.env`. */
  env: Record<string, string>;
  run(args: readonly string[], options?: RunOptions): Promise<CliResult>;
  /** Runs and throws (with everything the CLI said) unless it exits 0. */
  ok(args: readonly string[], options?: RunOptions): Promise<CliResult>;
  /** Runs `args` (which should include --json), expects exit 0 and parses stdout whole. */
  json<T = unknown>(args: readonly string[], options?: RunOptions): Promise<T>;
  path(...parts: string[]): string;
  write(name: string, content: string | Buffer): Promise<string>;
  /** A CSV `email,name,city` with `count` subscribers; returns its path and addresses. */
  writeCsv(count: number, options?: CsvOptions): Promise<{ file: string; addresses: string[] }>;
  /** Copies templates/ into the workspace; returns the copy's folder. */
  copyTemplates(): string;
  /** `create` from the copied welcome.mjml to the list `readers`, due now; returns its id. */
  createDue(subject?: string): Promise<number>;
  /**
   * sha256 of the database file and of its -wal: compare before and after. A missing -wal and an
   * empty one are the same (null): an empty WAL holds no frames, and SQLite creates one when a
   * read-only connection opens a WAL database.
   */
  dbDigest(): { db: string | null; wal: string | null };
  cleanup(): Promise<void>;
}

const SECRET = 'test-secret-0123456789abcdef-xyz'; // 32 characters

let csvCounter = 0;

export async function makeWorkspace(prefix = 'newsletter-e2e-'): Promise<Workspace> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  const db = path.join(dir, 'newsletter.db');
  const env: Record<string, string> = {
    NEWSLETTER_DATABASE: db,
    NEWSLETTER_FROM: 'Example News <news@example.org>',
    NEWSLETTER_BASE_URL: 'https://news.example.org',
    NEWSLETTER_SECRET: SECRET,
    NEWSLETTER_HOST_ID: 'test-host-a',
    NEWSLETTER_RATE: '1000',
    NEWSLETTER_RETRY_AFTER: '0s',
  };
  const run = (args: readonly string[], options: RunOptions = {}) =>
    runCli(args, { cwd: dir, ...options, env: { ...env, ...options.env } });
  const ok = async (args: readonly string[], options: RunOptions = {}) => {
    const result = await run(args, options);
    if (result.code !== 0) throw new Error(`expected exit 0: ${describeRun(args, result)}`);
    return result;
  };
  let templates: string | null = null;
  const workspace: Workspace = {
    dir,
    db,
    env,
    run,
    ok,
    async json<T>(args: readonly string[], options: RunOptions = {}): Promise<T> {
      const result = await ok(args, options);
      try {
        return JSON.parse(result.stdout) as T;
      } catch {
        throw new Error(`stdout is not one JSON document: ${describeRun(args, result)}`);
      }
    },
    path: (...parts) => path.join(dir, ...parts),
    async write(name, content) {
      const file = path.join(dir, name);
      await writeFile(file, content);
      return file;
    },
    async writeCsv(count, options = {}) {
      const prefix = options.prefix ?? 'reader';
      const domain = options.domain ?? 'example.net';
      const addresses = Array.from({ length: count }, (_, i) => `${prefix}${i + 1}@${domain}`);
      const rows = addresses.map((address, i) => `${address},Reader ${i + 1},City ${i + 1}`);
      const file = await workspace.write(
        options.name ?? `subscribers-${++csvCounter}.csv`,
        `email,name,city\n${rows.join('\n')}\n`,
      );
      return { file, addresses };
    },
    copyTemplates() {
      const target = path.join(dir, 'templates');
      cpSync(TEMPLATES, target, { recursive: true });
      return target;
    },
    async createDue(subject = 'Hello {{name}}') {
      templates ??= workspace.copyTemplates();
      const template = path.join(templates, 'welcome.mjml');
      const args = ['create', '--subject', subject, '--template', template, '--list', 'readers'];
      return (await workspace.json<{ id: number }>([...args, '--at', 'now', '--json'])).id;
    },
    dbDigest() {
      const wal = `${db}-wal`;
      return { db: sha256Of(db), wal: existsSync(wal) && statSync(wal).size > 0 ? sha256Of(wal) : null };
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
  return workspace;
}

export function sha256Of(file: string): string | null {
  if (!existsSync(file)) return null;
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/**
 * The e2e tests run the built CLI. `npm test` builds first; when a file runs on its own, a missing
 * build is a clear failure and a stale one a warning (other work may be changing src/ meanwhile).
 */
export function assertBuilt(): void {
  if (!existsSync(DIST_MAIN)) {
    throw new Error(
      `${DIST_MAIN} is missing: the end-to-end tests run the built CLI. Run \`npm run build\` first (\`npm test\` does).`,
    );
  }
  const built = statSync(DIST_MAIN).mtimeMs;
  const newer = newestFile(path.join(REPO_ROOT, 'src'));
  if (newer && newer.mtimeMs > built) {
    console.warn(
      `warning: ${path.relative(REPO_ROOT, newer.file)} is newer than dist/: the e2e tests run the last build. ` +
        'Run `npm run build` (or `npm test`) to test the current source.',
    );
  }
}

function newestFile(dir: string): { file: string; mtimeMs: number } | null {
  let newest: { file: string; mtimeMs: number } | null = null;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    const candidate = entry.isDirectory()
      ? newestFile(file)
      : file.endsWith('.ts')
        ? { file, mtimeMs: statSync(file).mtimeMs }
        : null;
    if (candidate && (!newest || candidate.mtimeMs > newest.mtimeMs)) newest = candidate;
  }
  return newest;
}

/** A TCP port on 127.0.0.1 that nothing listens on (it was free a moment ago). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return address.port;
}
