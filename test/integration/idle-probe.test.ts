/**
 * The idle cron run's quick look at a SQLite file (src/store/sqlite/idle-probe.ts) says "idle"
 * exactly when the store would: schema current, bound to this host, nothing due, nothing sending.
 * Anything else sends the run down the normal path, which then does or says what it must.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Store } from '../../src/store/store.js';
import { probeIdle } from '../../src/store/sqlite/idle-probe.js';
import {
  addresses,
  createScheduledNewsletter,
  registerTestRun,
  seedSubscribers,
  sqliteFactory,
  type StoreHandle,
} from '../helpers/store-fixtures.js';

const HOST = 'probe-host';
let handle: StoreHandle;
let store: Store;

beforeEach(async () => {
  handle = await sqliteFactory().open();
  store = handle.store;
  await seedSubscribers(store, 'readers', addresses(3), Date.now());
});

afterEach(async () => {
  await handle.cleanup();
});

/** What the engine's idle check and clone guard conclude, through the Store interface. */
async function storeSaysIdle(now: number): Promise<boolean> {
  const { current, latest } = await store.schemaVersion();
  return (
    current === latest &&
    (await store.getMeta('host_id')) === HOST &&
    (await store.dueNewsletters(now)).length === 0 &&
    (await store.sendingNewsletters()).length === 0
  );
}

const probe = (now: number, hostId = HOST) =>
  probeIdle({ file: handle.location, busyTimeoutMs: 1000, hostId, now });

describe('idle probe', () => {
  it('agrees with the store in every state a cron minute can find', async () => {
    const now = Date.now();
    // Not bound to any host: the normal path refuses (clone guard).
    expect(probe(now)).toBe(false);
    expect(await storeSaysIdle(now)).toBe(false);

    await store.setMeta('host_id', HOST);
    expect(probe(now)).toBe(true);
    expect(await storeSaysIdle(now)).toBe(true);
    // Bound to another host.
    expect(probe(now, 'another-host')).toBe(false);

    // Scheduled for later: still idle now, due a minute later.
    const later = await store.createNewsletter(
      { subject: 'Later', templatePath: 'x.mjml', from: null, lists: ['readers'], scheduledAt: now + 60_000 },
      now,
    );
    expect(probe(now)).toBe(true);
    expect(await storeSaysIdle(now)).toBe(true);
    expect(probe(now + 61_000)).toBe(false);
    expect(await storeSaysIdle(now + 61_000)).toBe(false);
    await store.cancelNewsletter(later.id, now);
    expect(probe(now + 61_000)).toBe(true);

    // Due now.
    const due = await createScheduledNewsletter(store, ['readers'], now);
    expect(probe(now)).toBe(false);
    expect(await storeSaysIdle(now)).toBe(false);

    // Sending.
    const run = await registerTestRun(store, now);
    await store.beginSending(
      due,
      {
        subject: 'Hello',
        html: '<p>{{unsubscribe_url}}</p>',
        text: '{{unsubscribe_url}}',
        from: 'News <news@example.org>',
        fields: ['unsubscribe_url'],
        templateHash: 'sha256:0',
        compiledAt: now,
      },
      run.id,
      now,
    );
    expect(probe(now)).toBe(false);
    expect(await storeSaysIdle(now)).toBe(false);
  });

  it('a missing file or a database from an older schema is not idle: the normal path explains', async () => {
    await store.setMeta('host_id', HOST);
    expect(() =>
      probeIdle({ file: `${handle.location}.missing`, busyTimeoutMs: 1000, hostId: HOST, now: 0 }),
    ).toThrow();
    // Simulate a database one migration behind.
    const { default: Database } = await import('better-sqlite3');
    const raw = new Database(handle.location);
    raw
      .prepare('DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)')
      .run();
    raw.close();
    expect(probe(Date.now())).toBe(false);
  });
});
