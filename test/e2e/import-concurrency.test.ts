/**
 * Long writers do not block sends and unsubscribes (issue 11). A 100,000-row `recipients import`
 * stages its rows without holding the SQLite write lock and publishes them in one short
 * transaction (src/store/staged-import.ts), so that while it runs:
 *
 * - another process's short write succeeds, even with a 1 s busy timeout;
 * - `serve` answers a one-click POST with 200, and when the write lock is held past its busy
 *   timeout (the import's publish, or any other program) it waits, then records the unsubscribe;
 * - and the import still lands whole, with exact counts, or (an invalid row) not at all.
 *
 * Every race is forced with failpoints (NEWSLETTER_FAILPOINTS: the import stops itself at a named
 * point, the test resumes it with SIGCONT) and with events the processes print, never with sleeps.
 *
 * The old import held BEGIN IMMEDIATE from its first row to its commit. Stopped anywhere in the
 * stream, as here after 20,000 rows, it held the lock: with it (and the same failpoints in its
 * row loop) the first two tests fail, checked: `recipients add` exits 5 with SQLITE_BUSY, and
 * `serve` cannot record the unsubscribe (503 after its 30 s wait; a 500 before this change).
 */
import { appendFile } from 'node:fs/promises';
import Database from 'better-sqlite3';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createUnsubscribeToken } from '../../src/render/unsubscribe-token.js';
import { assertBuilt, describeRun, makeWorkspace, type Workspace } from '../helpers/cli.js';
import { type CliProcess, reapChildren, startCli } from '../helpers/cli-process.js';
import { holdSqliteWriteLock, type SqliteWriteLock } from '../helpers/sqlite-write-lock.js';

const ROWS = 100_000;
/** Readers that exist before the big import: reader1 … reader10, also in the big file. */
const EXISTING = 10;
const SLOW = 180_000;

const cleanups: Array<() => Promise<void>> = [];

beforeAll(() => {
  assertBuilt();
});

afterEach(async () => {
  const left = await reapChildren();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  expect(left, 'children left running').toEqual([]);
});

/** A database with EXISTING readers on the list `readers`, and a CSV of ROWS readers (the same first ten). */
async function prepare(): Promise<{ ws: Workspace; file: string }> {
  const ws = await makeWorkspace('newsletter-import-');
  cleanups.push(() => ws.cleanup());
  await ws.ok(['init']);
  const { file: existing } = await ws.writeCsv(EXISTING);
  await ws.ok(['recipients', 'import', existing, '--list', 'readers']);
  const { file } = await ws.writeCsv(ROWS);
  return { ws, file };
}

function cliEnv(ws: Workspace, extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: ws.dir, ...ws.env, ...extra };
}

/** `recipients import FILE --list readers --json`, stopping at the failpoints named. */
function startImport(ws: Workspace, file: string, failpoints: string): CliProcess {
  return startCli(['recipients', 'import', file, '--list', 'readers', '--json'], {
    cwd: ws.dir,
    env: cliEnv(ws, { NEWSLETTER_FAILPOINTS: failpoints }),
    timeoutMs: SLOW,
  });
}

async function importSucceeded(importing: CliProcess): Promise<unknown> {
  const result = await importing.exited;
  expect(result.code, `import: ${result.stderr}`).toBe(0);
  return JSON.parse(result.stdout);
}

/** What the big import must report: the ten existing readers updated, every other one new. */
const EXACT = { created: ROWS - EXISTING, updated: EXISTING, addedToList: ROWS - EXISTING };

function query<T>(ws: Workspace, sql: string, ...params: unknown[]): T[] {
  const db = new Database(ws.db, { readonly: true, fileMustExist: true });
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

const subscriberCount = (ws: Workspace) =>
  query<{ n: number }>(ws, 'SELECT count(*) AS n FROM subscribers')[0]!.n;
const statusOf = (ws: Workspace, address: string) =>
  query<{ status: string }>(ws, 'SELECT status FROM subscribers WHERE address = ?', address)[0]?.status;
const idOf = (ws: Workspace, address: string) =>
  query<{ id: number }>(ws, 'SELECT id FROM subscribers WHERE address = ?', address)[0]!.id;

/** `serve --port 0`, verbose so that its database-busy events show; resolves once it listens. */
async function serve(ws: Workspace): Promise<{ child: CliProcess; base: string }> {
  const child = startCli(['--verbose', 'serve', '--port', '0'], {
    cwd: ws.dir,
    env: cliEnv(ws, { NEWSLETTER_BUSY_TIMEOUT: '1s' }),
    timeoutMs: SLOW,
  });
  for (;;) {
    const match = /listening on (http:\/\/[^\s/]+)\/u\//.exec(child.stdout());
    if (match?.[1]) return { child, base: match[1] };
    if (!child.running()) throw new Error(`serve did not start: ${child.stderr()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The one-click POST a mail provider makes for `address`'s link (the token made with our key). */
function oneClick(ws: Workspace, base: string, address: string): Promise<Response> {
  const token = createUnsubscribeToken(ws.env.NEWSLETTER_SECRET!, {
    subscriberId: idOf(ws, address),
    newsletterId: 1,
  });
  return fetch(`${base}/u/${token}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: 'List-Unsubscribe=One-Click',
  });
}

async function stop(child: CliProcess): Promise<string> {
  child.signal('SIGTERM');
  const result = await child.exited;
  expect(result, `serve stderr: ${result.stderr}`).toMatchObject({ code: 0, signal: null });
  return result.stderr;
}

describe('a 100,000-row import does not block other writers', () => {
  it(
    'another process writes with a 1 s busy timeout while the import stages; the import then lands whole',
    async () => {
      const { ws, file } = await prepare();
      expect((await ws.ok(['recipients', 'unsubscribe', 'reader1@example.net'])).code).toBe(0);

      // Stopped after its tenth staging batch: 20,000 rows read and staged, the rest still to come.
      const importing = startImport(ws, file, 'import-batch-staged@10');
      await importing.waitForFailpoint('import-batch-staged');

      const added = await ws.run(['recipients', 'add', 'late@example.org', '--list', 'readers'], {
        env: { NEWSLETTER_BUSY_TIMEOUT: '1s' },
      });
      expect(added.code, describeRun(['recipients', 'add'], added)).toBe(0);
      // Any program's write transaction, with a 1 s busy timeout: the lock is free.
      const other = new Database(ws.db, { fileMustExist: true, timeout: 1000 });
      try {
        other.exec('BEGIN IMMEDIATE');
        other.exec('ROLLBACK');
      } finally {
        other.close();
      }
      // Nothing of the import is visible before its publish.
      expect(subscriberCount(ws)).toBe(EXISTING + 1);

      importing.signal('SIGCONT');
      expect(await importSucceeded(importing)).toMatchObject(EXACT);
      expect(subscriberCount(ws)).toBe(ROWS + 1);
      expect(
        query(
          ws,
          "SELECT count(*) AS n FROM memberships m JOIN lists l ON l.id = m.list_id WHERE l.name = 'readers'",
        ),
      ).toEqual([{ n: ROWS + 1 }]);
      // The import never re-subscribes someone who left, and new readers got their ids in file order.
      expect(statusOf(ws, 'reader1@example.net')).toBe('unsubscribed');
      const late = idOf(ws, 'late@example.org');
      expect(
        query<{ address: string }>(
          ws,
          'SELECT address FROM subscribers WHERE id > ? ORDER BY id LIMIT 3',
          late,
        ),
      ).toEqual([
        { address: `reader${EXISTING + 1}@example.net` },
        { address: `reader${EXISTING + 2}@example.net` },
        { address: `reader${EXISTING + 3}@example.net` },
      ]);
    },
    SLOW,
  );

  it(
    'serve answers a one-click POST at once while the import stages, and waits out its publish holding the lock past the busy timeout',
    async () => {
      const { ws, file } = await prepare();
      const server = await serve(ws);
      const importing = startImport(ws, file, 'import-batch-staged@10,import-publishing');

      await importing.waitForFailpoint('import-batch-staged');
      expect((await oneClick(ws, server.base, 'reader1@example.net')).status).toBe(200);
      expect(statusOf(ws, 'reader1@example.net')).toBe('unsubscribed');

      // Now stopped inside its publish transaction: it holds the write lock for as long as it stays
      // stopped, longer than serve's 1 s busy timeout.
      importing.signal('SIGCONT');
      await importing.waitForFailpoint('import-publishing');
      const pending = oneClick(ws, server.base, 'reader2@example.net');
      await server.child.waitForStderr('the database is busy');
      importing.signal('SIGCONT');

      expect((await pending).status).toBe(200);
      expect(await importSucceeded(importing)).toMatchObject(EXACT);
      expect(statusOf(ws, 'reader1@example.net')).toBe('unsubscribed');
      expect(statusOf(ws, 'reader2@example.net')).toBe('unsubscribed');
      expect(subscriberCount(ws)).toBe(ROWS);
      const log = await stop(server.child);
      expect(log).not.toMatch(/request-failed|unsubscribe-deferred/);
    },
    SLOW,
  );

  it(
    'serve waits out another program holding the write lock past the busy timeout, then records the unsubscribe',
    async () => {
      const { ws } = await prepare();
      const server = await serve(ws);
      let lock: SqliteWriteLock | null = await holdSqliteWriteLock(ws.db);
      cleanups.push(async () => lock?.kill());

      const pending = oneClick(ws, server.base, 'reader3@example.net');
      // serve's first attempt has waited its whole busy timeout and failed: it keeps trying.
      await server.child.waitForStderr('the database is busy');
      expect(statusOf(ws, 'reader3@example.net')).toBe('active');
      await lock.release();
      lock = null;

      const answer = await pending;
      expect(answer.status).toBe(200);
      expect(statusOf(ws, 'reader3@example.net')).toBe('unsubscribed');
      await stop(server.child);
    },
    SLOW,
  );
});

describe('a 100,000-row import that fails publishes nothing', () => {
  it(
    'an invalid row at the end imports nothing and leaves no staging behind',
    async () => {
      const { ws, file } = await prepare();
      await appendFile(file, 'not-an-address,Broken,Nowhere\n');
      const before = query(ws, 'SELECT * FROM subscribers ORDER BY id');

      const result = await ws.run(['recipients', 'import', file, '--list', 'others'], { timeoutMs: SLOW });
      expect(result.code, describeRun(['recipients', 'import'], result)).toBe(4);
      expect(result.stderr).toContain('nothing was imported');
      expect(result.stderr).toContain(`line ${ROWS + 2}`);

      expect(query(ws, 'SELECT * FROM subscribers ORDER BY id')).toEqual(before);
      expect(query(ws, 'SELECT name FROM lists')).toEqual([{ name: 'readers' }]);
      expect(query(ws, 'SELECT count(*) AS n FROM memberships')).toEqual([{ n: EXISTING }]);
      // No staging table in the database: the import staged in a TEMP table of its own connection.
      expect(query(ws, "SELECT name FROM sqlite_master WHERE name LIKE '%staging%'")).toEqual([]);
    },
    SLOW,
  );

  it(
    'an import killed after staging everything publishes nothing, and the next import is exact',
    async () => {
      const { ws, file } = await prepare();
      const killed = startImport(ws, file, 'import-staged');
      await killed.waitForFailpoint('import-staged');
      killed.signal('SIGKILL');
      expect((await killed.exited).signal).toBe('SIGKILL');
      expect(subscriberCount(ws)).toBe(EXISTING);
      expect(query(ws, "SELECT name FROM sqlite_master WHERE name LIKE '%staging%'")).toEqual([]);

      expect(await importSucceeded(startImport(ws, file, ''))).toMatchObject(EXACT);
      expect(subscriberCount(ws)).toBe(ROWS);
    },
    SLOW,
  );
});
