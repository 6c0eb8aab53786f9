/**
 * The staged import keeps the one-transaction import's semantics, row by row, on both stores
 * (src/store/staged-import.ts): here with a stream long enough to span several staging batches,
 * an address repeated far apart (so that the repeat merges in the staging area, not in a batch),
 * existing subscribers whose fields are merged, and one who unsubscribed and must stay so.
 * The expected result is computed by a model of the old import: one upsert per row.
 */
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Store, SubscriberInput } from '../../src/store/store.js';
import { stagingBatches } from '../../src/store/staged-import.js';
import { describePostgres, postgresFactory, stopSharedCluster } from '../helpers/postgres.js';
import {
  asyncRows,
  type StoreFactory,
  type StoreHandle,
  seedSubscribers,
  sqliteFactory,
  subscriber,
} from '../helpers/store-fixtures.js';

/** More rows than either store stages in one batch (SQLite 2,000, PostgreSQL 1,000). */
const ROWS = 4500;

/** Reader i (1-based); the rows at 3,000 and after repeat readers 1, 2, … with new values. */
function stream(): SubscriberInput[] {
  return Array.from({ length: ROWS }, (_, i) => {
    const n = i < 3000 ? i + 1 : i - 2999;
    const repeat = i >= 3000;
    return subscriber(
      `Reader${n}@Example.org`,
      repeat ? `Reader ${n} (again)` : `Reader ${n}`,
      repeat ? { team: `t${n}` } : { city: `c${n}` },
    );
  });
}

interface Expected {
  name: string;
  email: string;
  fields: Record<string, string>;
}

/** The old import, one row at a time: what every subscriber must look like afterwards. */
function model(existing: Map<string, Expected>, rows: SubscriberInput[]) {
  const state = new Map(existing);
  let created = 0;
  let updated = 0;
  for (const row of rows) {
    const before = state.get(row.address);
    if (before) updated += 1;
    else created += 1;
    state.set(row.address, {
      name: row.name,
      email: row.email,
      fields: { ...(before?.fields ?? {}), ...row.fields },
    });
  }
  return { state, created, updated };
}

function semantics(factory: () => StoreFactory): void {
  let handle: StoreHandle;
  let store: Store;

  beforeEach(async () => {
    handle = await factory().open();
    store = handle.store;
  });

  afterEach(async () => {
    await handle.cleanup();
  });

  it('merges repeats across staging batches and existing subscribers exactly as row by row', async () => {
    // Readers 1..5 exist with a field of their own; reader 2 has unsubscribed.
    const existingRows = [1, 2, 3, 4, 5].map((n) =>
      subscriber(`reader${n}@example.org`, `Old ${n}`, { old: `o${n}` }),
    );
    await seedSubscribers(store, 'news', existingRows, 1000);
    await store.unsubscribe('reader2@example.org', 1001);
    const existing = new Map(
      existingRows.map((row) => [row.address, { name: row.name, email: row.email, fields: row.fields }]),
    );

    const rows = stream();
    const summary = await store.importSubscribers(asyncRows(rows), {
      list: 'news',
      fieldNames: ['city', 'team'],
      now: 2000,
    });
    const expected = model(existing, rows);
    expect(summary).toEqual({ created: expected.created, updated: expected.updated, addedToList: 3000 - 5 });

    const all = [];
    for (let afterId = 0; ; ) {
      const page = await store.listSubscribers({ afterId, limit: 1000 });
      if (page.length === 0) break;
      all.push(...page);
      afterId = page.at(-1)!.id;
    }
    expect(all).toHaveLength(3000);
    for (const subscriber of all) {
      const want = expected.state.get(subscriber.address);
      expect({ name: subscriber.name, email: subscriber.email, fields: subscriber.fields }).toEqual(want);
    }
    // New subscribers got their ids in the order they first appeared.
    expect(all.slice(5, 8).map((s) => s.address)).toEqual([
      'reader6@example.org',
      'reader7@example.org',
      'reader8@example.org',
    ]);
    expect((await store.getSubscriber('reader2@example.org'))?.status).toBe('unsubscribed');
    expect(await store.knownFieldNames()).toEqual(['city', 'old', 'team']);
    // Reader 2 is a member still, but a newsletter would not reach them.
    expect(await store.lists()).toEqual([{ name: 'news', members: 3000, reachable: 2999 }]);
  });

  it('a stream that fails after several batches imports nothing, and the store imports again', async () => {
    async function* failing() {
      yield* asyncRows(stream().slice(0, 3500));
      throw new Error('line 3502: not an address');
    }
    await expect(
      store.importSubscribers(failing(), { list: 'news', fieldNames: ['city'], now: 1000 }),
    ).rejects.toThrow('line 3502');
    expect(await store.listSubscribers({ afterId: 0, limit: 10 })).toEqual([]);
    expect(await store.lists()).toEqual([]);
    expect(await store.knownFieldNames()).toEqual([]);

    const again = await store.importSubscribers(asyncRows(stream().slice(0, 10)), {
      list: 'news',
      fieldNames: ['city'],
      now: 2000,
    });
    expect(again).toEqual({ created: 10, updated: 0, addedToList: 10 });
  });
}

describe('staged import: SQLite', () => semantics(sqliteFactory));

describePostgres('staged import: PostgreSQL', () => {
  afterAll(stopSharedCluster);
  semantics(postgresFactory);
});

describe('stagingBatches', () => {
  it('gives at most N distinct addresses a batch, merging a repeat into its batch as the store merges it', async () => {
    const rows = [
      subscriber('a@example.org', 'A', { city: 'Oslo' }),
      subscriber('b@example.org', 'B'),
      subscriber('A@example.org', 'A2', { team: 'blue' }),
      subscriber('c@example.org', 'C'),
      subscriber('a@example.org', 'A3', { city: 'Bergen' }),
    ];
    const batches = [];
    for await (const batch of stagingBatches(asyncRows(rows), 3)) batches.push(batch);
    expect(batches).toEqual([
      [
        {
          seq: 1,
          email: 'A@example.org',
          address: 'a@example.org',
          name: 'A2',
          fields: { city: 'Oslo', team: 'blue' },
          occurrences: 2,
        },
        { seq: 2, email: 'b@example.org', address: 'b@example.org', name: 'B', fields: {}, occurrences: 1 },
        { seq: 4, email: 'c@example.org', address: 'c@example.org', name: 'C', fields: {}, occurrences: 1 },
      ],
      // A repeat after its batch was staged starts the next one; the staging area merges it.
      [
        {
          seq: 5,
          email: 'a@example.org',
          address: 'a@example.org',
          name: 'A3',
          fields: { city: 'Bergen' },
          occurrences: 1,
        },
      ],
    ]);
  });
});
