/**
 * The Store contract for issue 13, sections 3 and 4: an unsubscribe link stays bound to the one
 * person it was sent to (subscriber ids are never reused), an opt-out outlives `recipients remove`,
 * and `recipients forget` erases a person while keeping them out. Loaded by
 * store-contract.test.ts inside its loop over the stores, so it runs against SQLite there and
 * against PostgreSQL in postgres-contract.test.ts.
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import { expect, it } from 'vitest';
import { ERASED_REPLY, FORGOTTEN_PREFIX } from '../../src/domain/forgotten.js';
import { REMOVED_OPT_OUT } from '../../src/domain/ledger-reasons.js';
import type { Millis } from '../../src/domain/types.js';
import type { Store } from '../../src/store/store.js';
import type { StoreHandle } from '../helpers/store-fixtures.js';
import {
  claim,
  registerTestRun,
  seedSubscribers,
  sendingNewsletter,
  sentWrite,
  subscriber,
} from '../helpers/store-fixtures.js';

const T0: Millis = Date.now();
const at = (offsetMs: number): Millis => T0 + offsetMs;

async function idOf(store: Store, address: string): Promise<number> {
  const found = await store.getSubscriber(address);
  if (!found) throw new Error(`no subscriber ${address}`);
  return found.id;
}

async function suppressionOf(store: Store, address: string) {
  const all = await store.listSuppressions({ afterAddress: null, limit: 1000 });
  return all.find((s) => s.address === address) ?? null;
}

/** The audit trail's details as text: no Store method reads them back. */
async function eventDetails(handle: StoreHandle): Promise<string> {
  if (handle.store.kind === 'sqlite') {
    const db = new Database(handle.location, { readonly: true });
    try {
      return JSON.stringify(db.prepare('SELECT detail FROM events').all());
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: handle.location });
  await client.connect();
  try {
    return JSON.stringify((await client.query('SELECT detail FROM events')).rows);
  } finally {
    await client.end();
  }
}

export function optOutContract(current: () => { store: Store; handle: StoreHandle }): void {
  it('never hands a removed subscriber id to someone else: the old link leaves the newcomer subscribed', async () => {
    const { store } = current();
    await seedSubscribers(store, 'news', ['ann@example.org', 'grace@example.org'], at(0));
    const graceId = await idOf(store, 'grace@example.org');
    expect(await store.removeSubscriber('grace@example.org', at(1))).toBe(true);
    await store.addSubscriber(subscriber('carol@example.org'), ['news'], at(2));
    const carolId = await idOf(store, 'carol@example.org');
    expect(carolId).not.toBe(graceId);
    expect(carolId).toBeGreaterThan(graceId);
    // Grace's link names her id: nobody is behind it any more.
    expect(await store.unsubscribeById(graceId, at(3))).toBeNull();
    expect(await store.getSubscriber('carol@example.org')).toMatchObject({ status: 'active' });
  });

  it('keeps an opt-out as a suppression, source "removed", when an unsubscribed person is removed', async () => {
    const { store } = current();
    await seedSubscribers(store, 'news', ['ann@example.org', 'bob@example.org'], at(0));
    await store.unsubscribe('ann@example.org', at(1));
    expect(await store.removeSubscriber('ann@example.org', at(2))).toBe(true);
    expect(await store.removeSubscriber('bob@example.org', at(2))).toBe(true);
    expect(await suppressionOf(store, 'ann@example.org')).toMatchObject({
      ...REMOVED_OPT_OUT,
      createdAt: at(2),
    });
    // Someone who never opted out leaves nothing behind.
    expect(await suppressionOf(store, 'bob@example.org')).toBeNull();

    // The CRM's next export brings the row back; the suppression keeps them from being mailed.
    await seedSubscribers(store, 'news', ['ann@example.org'], at(3));
    const { newsletter } = await sendingNewsletter(store, { list: 'other', recipients: [], now: at(4) });
    expect(newsletter.status).toBe('sending');
    expect(await suppressionOf(store, 'ann@example.org')).toMatchObject({ source: 'removed' });
  });

  it('keeps the first reason of an address already suppressed when it is removed', async () => {
    const { store } = current();
    await seedSubscribers(store, 'news', ['ann@example.org'], at(0));
    await store.suppress('ann@example.org', 'hard bounce 5.1.1', 'bounce', at(1));
    await store.removeSubscriber('ann@example.org', at(2));
    expect(await suppressionOf(store, 'ann@example.org')).toMatchObject({
      reason: 'hard bounce 5.1.1',
      source: 'bounce',
    });
  });

  it('forgets a person: their rows and copies go, the counts stay, a keyed hash keeps them out', async () => {
    const { store } = current();
    const { newsletter } = await sendingNewsletter(store, {
      list: 'news',
      recipients: [subscriber('ann@example.org', 'Ann', { city: 'Oslo' }), 'bob@example.org'],
      now: at(0),
    });
    const run = await registerTestRun(store, at(1));
    const batch = (await claim(store, { newsletterId: newsletter.id, runId: run.id, limit: 10, now: at(2) }))
      .claimed;
    await store.recordOutcomes(
      run.id,
      batch.map((row) =>
        row.address === 'ann@example.org'
          ? {
              ...sentWrite(row),
              state: 'failed' as const,
              smtpReply: '550 5.1.1 <Ann@Example.org>: no such user',
            }
          : sentWrite(row),
      ),
      at(3),
    );
    await store.suppress('ann@example.org', 'hard bounce', 'bounce', at(4));
    await store.recordEvent(
      'reconcile',
      { newsletterId: newsletter.id, addresses: ['ann@example.org'] },
      at(4),
    );
    const countsBefore = await store.counts(newsletter.id);

    expect(await store.forgetAddress('ann@example.org', at(5))).toEqual({ subscriber: true, deliveries: 1 });

    expect(await store.getSubscriber('ann@example.org')).toBeNull();
    expect(await suppressionOf(store, 'ann@example.org')).toBeNull();
    expect(await store.counts(newsletter.id)).toEqual(countsBefore);
    const rows = await store.deliveries(newsletter.id, { limit: 100 });
    expect(rows.map((row) => row.address).sort()).toEqual([
      'bob@example.org',
      expect.stringMatching(new RegExp(`^${FORGOTTEN_PREFIX}[0-9a-f]{64}$`)),
    ]);
    const erased = rows.find((row) => row.address.startsWith(FORGOTTEN_PREFIX));
    expect(erased).toMatchObject({ state: 'failed', smtpReply: ERASED_REPLY });
    expect(JSON.stringify(rows)).not.toMatch(/ann@/i);
    const details = await eventDetails(current().handle);
    expect(details).not.toContain('ann@example.org');
    expect(details).toContain(FORGOTTEN_PREFIX);

    const forgotten = await store.forgottenAddresses();
    expect(forgotten.has('ann@example.org')).toBe(true);
    expect(forgotten.has('bob@example.org')).toBe(false);

    // Forgetting again (say, an address already removed) is fine and keeps the same hash.
    expect(await store.forgetAddress('ann@example.org', at(6))).toEqual({ subscriber: false, deliveries: 0 });
    expect((await store.forgottenAddresses()).has('ann@example.org')).toBe(true);
  });
}
