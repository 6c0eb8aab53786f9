/**
 * The SQLite store writes outcomes without an fsync of their own (synchronous=NORMAL), and claims
 * with one: a claim must be on disk before its SMTP conversation starts, and its fsync also
 * carries every outcome written before it. The claim commits at NORMAL and then fsyncs the WAL file
 * itself, off the event loop (src/store/sqlite/wal-sync.ts); it resolves only once that fsync is
 * done. These tests pin that, and that the connection is back at FULL after every send-path write,
 * whether it succeeded or threw, so that no other write commits without its fsync.
 */
import { readlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { type FileHandle, open } from 'node:fs/promises';
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
let restoreSync: (() => void) | null = null;
afterEach(async () => {
  restoreSync?.();
  restoreSync = null;
  await handle?.cleanup();
  handle = null;
});

/**
 * Records the path of every file whose fsync (FileHandle.sync, the real one, still called) has
 * completed. Node's FileHandle class is not exported; its prototype is reached through a handle.
 */
async function recordFsyncs(anyFile: string): Promise<string[]> {
  const probe = await open(anyFile, 'r');
  const prototype = Object.getPrototypeOf(probe) as { sync: (this: FileHandle) => Promise<void> };
  await probe.close();
  const original = prototype.sync;
  const synced: string[] = [];
  prototype.sync = async function (this: FileHandle) {
    const file = readlinkSync(`/proc/self/fd/${this.fd}`);
    await original.call(this);
    synced.push(file);
  };
  restoreSync = () => {
    prototype.sync = original;
  };
  return synced;
}

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

  it('a claim resolves only once the WAL file is fsynced; the connection is at FULL again', async () => {
    handle = await sqliteFactory().open();
    const { store } = handle;
    const now = Date.now();
    const { newsletter, starter } = await sendingNewsletter(store, {
      list: 'readers',
      recipients: ['a@example.net', 'b@example.net'],
      now,
    });
    const synced = await recordFsyncs(handle.location);
    const first = await claim(store, { newsletterId: newsletter.id, runId: starter.id, limit: 1, now });
    expect(first.claimed).toHaveLength(1);
    // The first time, the folder too: a power cut must not lose the WAL file's name either.
    expect(synced).toEqual([dirname(handle.location), `${handle.location}-wal`]);
    expect(synchronousOf(store)).toBe(FULL);
    // Every claim, not only the first.
    const second = await claim(store, { newsletterId: newsletter.id, runId: starter.id, limit: 1, now });
    expect(second.claimed).toHaveLength(1);
    expect(synced.slice(2)).toEqual([`${handle.location}-wal`]);
  });

  it('a database not in WAL mode claims at FULL, inside the commit', async () => {
    handle = await sqliteFactory().open();
    const { store } = handle;
    (store as unknown as { db: Database.Database }).db.pragma('journal_mode = DELETE');
    const now = Date.now();
    const { newsletter, starter } = await sendingNewsletter(store, {
      list: 'readers',
      recipients: ['a@example.net'],
      now,
    });
    const synced = await recordFsyncs(handle.location);
    const claimed = await claim(store, { newsletterId: newsletter.id, runId: starter.id, limit: 1, now });
    expect(claimed.claimed).toHaveLength(1);
    expect(synced).toEqual([]);
    expect(synchronousOf(store)).toBe(FULL);
  });
});
