/**
 * What only a shared PostgreSQL database needs, on a real server:
 *
 * - the engine refuses a run whose host id is in use by a live run on another machine;
 * - a host whose clock is off from the database's starts a run with a warning, and neither ends a
 *   live run early nor keeps an expired one (leases are on the database's clock);
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
      pidScope: null,
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
      pidScope: null,
      now: Date.now() - 2 * LEASE_MS,
      leaseMs: LEASE_MS,
    });
    const sent: string[] = [];
    const result = await sendDue(deps({ hostId: 'shared-id', hostname: 'machine-b' }, sent));
    expect(result.expired.runs).toBeGreaterThanOrEqual(1);
    expect(sent).toHaveLength(30);
    expect((await store.getNewsletter(newsletter.id))?.status).toBe('sent');
  });

  it('a host whose clock is off still registers (with a warning), and its leases are on the database’s clock', async () => {
    const tolerance = clockTolerance(LEASE_MS);
    expect(tolerance).toBe(2500);
    const real = Date.now.bind(Date);
    // A live run of a host whose clock is right.
    const other = await registerTestRun(store, real(), { leaseMs: LEASE_MS, hostId: 'right-clock' });
    try {
      // This process's clock, ten minutes ahead: as a skewed host's whole clock is.
      vi.spyOn(Date, 'now').mockImplementation(() => real() + 600_000);
      const skewed = await registerTestRun(store, Date.now(), { leaseMs: LEASE_MS, hostId: 'ahead' });
      expect(skewed.clockSkewMs).toBeLessThan(-590_000);
      // Its lease is the database's clock plus the lease, not its own clock's.
      expect(Math.abs(skewed.leaseUntil - (real() + LEASE_MS))).toBeLessThan(5_000);
      // Its view of "now" does not end the live run of the other host.
      expect(await store.expireRuns(Date.now(), [])).toMatchObject({ runs: 0 });
      vi.restoreAllMocks();
      expect(await store.renewLease(other.id, Date.now(), LEASE_MS)).toBe(true);

      // A clock ten minutes behind neither keeps an expired lease nor has its own expire early.
      vi.spyOn(Date, 'now').mockImplementation(() => real() - 600_000);
      const behind = await registerTestRun(store, Date.now(), { leaseMs: 1_000, hostId: 'behind' });
      expect(behind.clockSkewMs).toBeGreaterThan(590_000);
      expect(await store.expireRuns(Date.now(), [])).toMatchObject({ runs: 0 });
      vi.restoreAllMocks();
      const [row] = (await store.listRuns(10)).filter((run) => run.id === behind.id);
      expect(Math.abs(row!.leaseUntil - (real() + 1_000))).toBeLessThan(5_000);
      // Once the database's clock has passed its lease, a host behind ends it all the same.
      const until = row!.leaseUntil + 1;
      while (real() < until) await new Promise((resolve) => setTimeout(resolve, until - real()));
      vi.spyOn(Date, 'now').mockImplementation(() => real() - 600_000);
      expect(await store.expireRuns(Date.now(), [])).toMatchObject({ runs: 1 });
      expect(await store.renewLease(behind.id, Date.now(), LEASE_MS)).toBe(false);
    } finally {
      vi.restoreAllMocks();
    }
    // A clock within the tolerance: no warning.
    expect((await registerTestRun(store, Date.now(), { leaseMs: LEASE_MS })).clockSkewMs).toBeUndefined();
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
