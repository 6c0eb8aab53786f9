/**
 * `send-due` runs SQLite's claims and outcome writes on a thread of their own, with its own
 * connection (src/store/sqlite/ledger-thread.ts). The thread runs the built worker file, so these
 * tests open the store from dist/ (`npm test` builds first), on a database the source store made.
 * What they pin: the thread's writes are the store's (seen at once by the main connection), its
 * connection fsyncs every commit (WAL, synchronous=FULL), a busy database comes back as the same
 * transient error the run waits out, and the thread never keeps a finished process alive.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { isTransientDatabaseError } from '../../src/store/transient.js';
import type { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { holdSqliteWriteLock, type SqliteWriteLock } from '../helpers/sqlite-write-lock.js';
import {
  addresses,
  claim,
  registerTestRun,
  sendingNewsletter,
  sentWrite,
  sqliteFactory,
  type StoreHandle,
} from '../helpers/store-fixtures.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BUILT_STORE = join(ROOT, 'dist/store/sqlite/sqlite-store.js');
const FULL = 2;

async function builtStoreClass(): Promise<typeof SqliteStore> {
  if (!existsSync(BUILT_STORE))
    throw new Error(`${BUILT_STORE} is missing: run \`npm run build\` (npm test does)`);
  return ((await import(pathToFileURL(BUILT_STORE).href)) as { SqliteStore: typeof SqliteStore }).SqliteStore;
}

let handle: StoreHandle | null = null;
const opened: SqliteStore[] = [];
let lock: SqliteWriteLock | null = null;
afterEach(async () => {
  await lock?.kill();
  lock = null;
  for (const store of opened.splice(0)) await store.close().catch(() => undefined);
  await handle?.cleanup();
  handle = null;
});

async function threadedStore(busyTimeoutMs = 5000): Promise<SqliteStore> {
  handle = await sqliteFactory().open();
  const Built = await builtStoreClass();
  const store = Built.open(handle.location, {
    create: false,
    readonly: false,
    busyTimeoutMs,
    ledgerThread: true,
  });
  opened.push(store);
  return store;
}

describe('the ledger thread', () => {
  it('claims, records and gives back on its own connection; the main connection sees each write at once', async () => {
    const store = await threadedStore();
    const now = Date.now();
    const { newsletter, starter } = await sendingNewsletter(store, {
      list: 'news',
      recipients: addresses(5),
      now,
    });
    expect(await store.ledgerSettings()).toBeNull();

    const first = await claim(store, { newsletterId: newsletter.id, runId: starter.id, limit: 3, now });
    expect(first.claimed).toHaveLength(3);
    // A claim started the thread: its connection is another than the store's own.
    expect(await store.ledgerSettings()).toEqual({ journalMode: 'wal', synchronous: FULL });
    expect((await store.counts(newsletter.id)).claimed).toBe(3);

    const recorded = await store.recordOutcomes(starter.id, [sentWrite(first.claimed[0]!)], now + 1);
    expect(recorded.refused).toBe(0);
    const released = await store.releaseClaims(
      starter.id,
      first.claimed.slice(1).map((row) => row.deliveryId),
      now + 2,
    );
    expect(released).toBe(2);
    expect(await store.counts(newsletter.id)).toMatchObject({ sent: 1, retry: 2, claimed: 0 });

    // The fence holds on the thread as on the store: another run cannot write these rows.
    const other = await registerTestRun(store, now + 3);
    const second = await claim(store, {
      newsletterId: newsletter.id,
      runId: other.id,
      limit: 10,
      now: now + 3,
    });
    expect(second.claimed.map((row) => row.address).sort()).toEqual(
      [
        ...first.claimed.slice(1),
        ...addresses(5)
          .slice(3)
          .map((address) => ({ address })),
      ]
        .map((row) => row.address)
        .sort(),
    );
    const stale = await store.recordOutcomes(starter.id, second.claimed.map(sentWrite), now + 4);
    expect(stale.refused).toBe(second.claimed.length);
    expect(await store.counts(newsletter.id)).toMatchObject({ sent: 1, claimed: 4 });
  });

  it('a database busy past the timeout comes back as the transient error a run waits out, and the next try succeeds', async () => {
    const store = await threadedStore(50);
    const now = Date.now();
    const { newsletter, starter } = await sendingNewsletter(store, {
      list: 'news',
      recipients: addresses(2),
      now,
    });
    lock = await holdSqliteWriteLock(handle!.location);
    const refused = await claim(store, {
      newsletterId: newsletter.id,
      runId: starter.id,
      limit: 2,
      now,
    }).then(
      () => null,
      (error: unknown) => error,
    );
    expect(refused).toMatchObject({ code: expect.stringMatching(/^SQLITE_BUSY/) });
    expect(isTransientDatabaseError(refused)).toBe(true);
    expect((await store.counts(newsletter.id)).claimed).toBe(0);

    await lock.release();
    lock = null;
    const claimed = await claim(store, { newsletterId: newsletter.id, runId: starter.id, limit: 2, now });
    expect(claimed.claimed).toHaveLength(2);
  });

  it('prepareToClaim starts the thread before any claim; a process that prepares and never claims still exits', async () => {
    const store = await threadedStore();
    expect(await store.ledgerSettings()).toBeNull();
    store.prepareToClaim();
    expect(await store.ledgerSettings()).toEqual({ journalMode: 'wal', synchronous: FULL });
    // Without the thread asked for (a run at the default rate), it does nothing.
    const plain = (await builtStoreClass()).open(handle!.location, {
      create: false,
      readonly: false,
      busyTimeoutMs: 5000,
    });
    opened.push(plain);
    plain.prepareToClaim();
    expect(await plain.ledgerSettings()).toBeNull();

    const script = `
      const { SqliteStore } = await import(process.argv[2]);
      const store = SqliteStore.open(process.argv[3], { create: false, readonly: false, busyTimeoutMs: 5000, ledgerThread: true });
      store.prepareToClaim();
      console.log('prepared');
    `;
    const scriptFile = join(dirname(handle!.location), 'prepares-and-leaves.mjs');
    await writeFile(scriptFile, script);
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [scriptFile, pathToFileURL(BUILT_STORE).href, handle!.location],
      { cwd: ROOT, timeout: 30_000 },
    );
    expect(stdout.trim()).toBe('prepared');
  });

  it('never keeps a process alive: a script that claims and forgets to close its store still exits', async () => {
    handle = await sqliteFactory().open();
    const { newsletter, starter } = await sendingNewsletter(handle.store, {
      list: 'news',
      recipients: addresses(3),
      now: Date.now(),
    });
    const script = `
      const { SqliteStore } = await import(process.argv[2]);
      const [file, newsletterId, runId] = [process.argv[3], Number(process.argv[4]), Number(process.argv[5])];
      const store = SqliteStore.open(file, { create: false, readonly: false, busyTimeoutMs: 5000, ledgerThread: true });
      const result = await store.claimBatch({ newsletterId, runId, limit: 10, now: Date.now(), afterSubscriberId: 0,
        messageIds: { secret: 'child', fromDomain: 'example.org' } });
      console.log(result.claimed.length);
    `;
    const scriptFile = join(dirname(handle.location), 'forgets-to-close.mjs');
    await writeFile(scriptFile, script);
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        scriptFile,
        pathToFileURL(BUILT_STORE).href,
        handle.location,
        String(newsletter.id),
        String(starter.id),
      ],
      { cwd: ROOT, timeout: 30_000 },
    );
    expect(stdout.trim()).toBe('3');
    expect((await handle.store.counts(newsletter.id)).claimed).toBe(3);
  });

  it('a thread that cannot start (a NODE_OPTIONS preload only a main thread may run) leaves the work to the store', async () => {
    handle = await sqliteFactory().open();
    const { newsletter, starter } = await sendingNewsletter(handle.store, {
      list: 'news',
      recipients: addresses(3),
      now: Date.now(),
    });
    const folder = dirname(handle.location);
    // Setting the umask is refused in a worker thread: the preload throws there, as some would.
    const preload = join(folder, 'umask.cjs');
    await writeFile(preload, 'process.umask(0o022);\n');
    const script = join(folder, 'claims-without-thread.mjs');
    await writeFile(
      script,
      `
      const { SqliteStore } = await import(process.argv[2]);
      const [file, newsletterId, runId] = [process.argv[3], Number(process.argv[4]), Number(process.argv[5])];
      const store = SqliteStore.open(file, { create: false, readonly: false, busyTimeoutMs: 5000, ledgerThread: true });
      const messageIds = { secret: 'child', fromDomain: 'example.org' };
      const first = await store.claimBatch({ newsletterId, runId, limit: 2, now: Date.now(), afterSubscriberId: 0, messageIds });
      const second = await store.claimBatch({ newsletterId, runId, limit: 2, now: Date.now(), afterSubscriberId: first.lastSubscriberId, messageIds });
      console.log(JSON.stringify({ claimed: first.claimed.length + second.claimed.length, thread: await store.ledgerSettings() }));
      await store.close();
    `,
    );
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [script, pathToFileURL(BUILT_STORE).href, handle.location, String(newsletter.id), String(starter.id)],
      { cwd: ROOT, timeout: 30_000, env: { ...process.env, NODE_OPTIONS: `--require ${preload}` } },
    );
    expect(JSON.parse(stdout.trim())).toEqual({ claimed: 3, thread: null });
    expect((await handle.store.counts(newsletter.id)).claimed).toBe(3);
  });
});
