/**
 * What only a shared PostgreSQL database needs, on a real server:
 *
 * - the engine refuses a run whose host id is in use by a live run on another machine;
 * - a host whose clock is off from the database's cannot start a run (leases compare clocks);
 * - migrations from many connections at once apply once;
 * - a read-only store (dry runs) cannot write.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { CloneRefusedError, DatabaseError } from '../../src/domain/errors.js';
import { type SendDueDeps, sendDue } from '../../src/engine/send-due.js';
import { clockTolerance } from '../../src/store/postgres/lease.js';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import {
  describePostgres,
  type PgCluster,
  type PgDatabase,
  sharedCluster,
  stopSharedCluster,
} from '../helpers/postgres.js';
import { addresses, registerTestRun, sendingNewsletter } from '../helpers/store-fixtures.js';
import { engineDeps, recordingTransport } from '../helpers/engine-deps.js';

const LEASE_MS = 60_000;

describePostgres('PostgreSQL: hosts, clocks, migrations', () => {
  let cluster: PgCluster;
  let database: PgDatabase;
  let store: PostgresStore;
  let cwd: string;

  beforeAll(async () => {
    cluster = await sharedCluster();
    cwd = mkdtempSync(`${tmpdir()}/newsletter-engine-`);
  });

  beforeEach(async () => {
    database = await cluster.createDatabase('engine');
    store = await PostgresStore.open(database.url, { readonly: false });
    await store.migrate();
  });

  afterEach(async () => {
    vi.restoreAllMocks();
    await store.close();
    await database.drop();
  });

  afterAll(async () => {
    rmSync(cwd, { recursive: true, force: true });
    await stopSharedCluster();
  });

  function deps(overrides: { hostId: string; hostname: string }, sent: string[]): SendDueDeps {
    const config = loadConfig({
      cwd,
      env: { NEWSLETTER_DATABASE: database.url, NEWSLETTER_RATE: '100000', NEWSLETTER_LEASE: '60s' },
    });
    return engineDeps({ config, store, transport: recordingTransport(sent), ...overrides });
  }

  it('refuses a run whose host id a live run on another machine is using', async () => {
    const { newsletter } = await sendingNewsletter(store, {
      list: 'news',
      recipients: addresses(30),
      now: Date.now(),
    });
    const twin = await store.registerRun({
      hostId: 'shared-id',
      hostname: 'machine-a',
      pid: 4242,
      now: Date.now(),
      leaseMs: LEASE_MS,
    });
    const sent: string[] = [];
    const refused = sendDue(deps({ hostId: 'shared-id', hostname: 'machine-b' }, sent));
    await expect(refused).rejects.toBeInstanceOf(CloneRefusedError);
    await expect(refused).rejects.toThrow(/machine-a/);
    expect(sent).toEqual([]);
    expect((await store.counts(newsletter.id)).pending).toBe(30);
    const runs = await store.listRuns(10);
    expect(runs.find((run) => run.id === twin.id)?.endedAt).toBeNull(); // the first one is left alone
    const own = runs.find((run) => run.hostname === 'machine-b');
    expect(own?.outcome).toBe('error');
    expect(own?.endedAt).not.toBeNull();
  });

  it('a twin whose lease has passed is ended instead, and the run sends', async () => {
    const { newsletter } = await sendingNewsletter(store, {
      list: 'news',
      recipients: addresses(30),
      now: Date.now(),
    });
    await store.registerRun({
      hostId: 'shared-id',
      hostname: 'machine-a',
      pid: 4242,
      now: Date.now() - 2 * LEASE_MS,
      leaseMs: LEASE_MS,
    });
    const sent: string[] = [];
    const result = await sendDue(deps({ hostId: 'shared-id', hostname: 'machine-b' }, sent));
    expect(result.expired.runs).toBeGreaterThanOrEqual(1);
    expect(sent).toHaveLength(30);
    expect((await store.getNewsletter(newsletter.id))?.status).toBe('sent');
  });

  it('refuses to register a run when this host’s clock is off from the database’s', async () => {
    const tolerance = clockTolerance(LEASE_MS);
    expect(tolerance).toBe(2500);
    const real = Date.now.bind(Date);
    vi.spyOn(Date, 'now').mockImplementation(() => real() + 60_000);
    await expect(registerTestRun(store, Date.now(), { leaseMs: LEASE_MS })).rejects.toThrow(
      /clock is 60\.\d s ahead of the database server's/,
    );
    vi.restoreAllMocks();
    vi.spyOn(Date, 'now').mockImplementation(() => real() - tolerance * 4);
    await expect(registerTestRun(store, Date.now(), { leaseMs: LEASE_MS })).rejects.toBeInstanceOf(
      DatabaseError,
    );
    vi.restoreAllMocks();
    // The `now` a caller passes is not what is checked: tests (and the contract) move it freely.
    await expect(
      registerTestRun(store, Date.now() + 3_600_000, { leaseMs: LEASE_MS }),
    ).resolves.toMatchObject({
      hostId: 'test-host',
    });
  });

  it('twenty connections migrating a new database at once apply each migration once', async () => {
    const fresh = await cluster.createDatabase('migrate');
    const stores = await Promise.all(
      Array.from({ length: 20 }, () => PostgresStore.open(fresh.url, { readonly: false, maxConnections: 1 })),
    );
    try {
      const results = await Promise.all(stores.map((s) => s.migrate()));
      const latest = (await stores[0]!.schemaVersion()).latest;
      expect(results.filter((r) => r.from === 0)).toEqual([{ from: 0, to: latest }]);
      expect(results.filter((r) => r.from === latest)).toHaveLength(19);
    } finally {
      for (const s of stores) await s.close();
      await fresh.drop();
    }
  });

  it('a read-only store reads, and refuses to write', async () => {
    await store.setMeta('probe', 'yes');
    const readonly = await PostgresStore.open(database.url, { readonly: true });
    try {
      expect(await readonly.getMeta('probe')).toBe('yes');
      expect(await readonly.schemaVersion()).toEqual(await store.schemaVersion());
      await expect(readonly.setMeta('probe', 'no')).rejects.toBeInstanceOf(DatabaseError);
      await expect(registerTestRun(readonly, Date.now())).rejects.toBeInstanceOf(DatabaseError);
      expect(await store.getMeta('probe')).toBe('yes');
    } finally {
      await readonly.close();
    }
  });
});
