/**
 * The SQLite store writes outcomes without an fsync of their own (synchronous=NORMAL), and claims
 * with one (synchronous=FULL): a claim must be on disk before its SMTP conversation starts, and its
 * fsync also carries every outcome written before it. These tests pin that the connection is back
 * at FULL after every outcome write, whether the write succeeded or threw, so that no claim ever
 * commits without its fsync.
 */
import type Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { Store } from '../../src/store/store.js';
import {
  claim,
  sendingNewsletter,
  sentWrite,
  sqliteFactory,
  type StoreHandle,
} from '../helpers/store-fixtures.js';

const FULL = 2;

let handle: StoreHandle | null = null;
afterEach(async () => {
  await handle?.cleanup();
  handle = null;
});

/** The store's own connection: the setting is per connection, so only it can say. */
function synchronousOf(store: Store): number {
  const db = (store as unknown as { db: Database.Database }).db;
  return db.pragma('synchronous', { simple: true }) as number;
}

describe('SQLite: outcome writes skip their fsync, claims never do', () => {
  it('is at synchronous=FULL after opening, after recordOutcomes, and after releaseClaims', async () => {
    handle = await sqliteFactory().open();
    const { store } = handle;
    const now = Date.now();
    const { newsletter, starter } = await sendingNewsletter(store, {
      list: 'readers',
      recipients: ['a@example.net', 'b@example.net', 'c@example.net'],
      now,
    });
    expect(synchronousOf(store)).toBe(FULL);
    const claimed = await claim(store, { newsletterId: newsletter.id, runId: starter.id, limit: 3, now });
    expect(claimed.claimed).toHaveLength(3);
    const [first, second, third] = claimed.claimed;
    if (!first || !second || !third) throw new Error('expected three claimed rows');

    expect(await store.recordOutcomes(starter.id, [sentWrite(first)], now)).toMatchObject({
      applied: 1,
      refused: 0,
    });
    expect(synchronousOf(store)).toBe(FULL);
    expect(await store.releaseClaims(starter.id, [second.deliveryId], now)).toBe(1);
    expect(synchronousOf(store)).toBe(FULL);

    // A write that throws (a closed statement would do; a row id of the wrong type is simpler)
    // must not leave the connection without its fsync either.
    await expect(
      store.recordOutcomes(
        starter.id,
        [{ ...sentWrite(third), deliveryId: { not: 'a number' } as unknown as number }],
        now,
      ),
    ).rejects.toThrow();
    expect(synchronousOf(store)).toBe(FULL);

    // And the outcome is really there, from another connection.
    const other = await handle.connect();
    const rows = await other.deliveries(newsletter.id, { limit: 10 });
    expect(rows.map((row) => row.state).sort()).toEqual(['claimed', 'retry', 'sent']);
  });
});
