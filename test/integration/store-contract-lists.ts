/**
 * The Store contract for issue 14's list management: per-list opt-outs (the audience leaves them
 * out, they outlive remove, --sync and lists delete, they follow a rename), import --sync and
 * --dry-run, a `lists` column, resubscribe, remove from one list, rename and delete. Loaded by
 * store-contract.test.ts inside its loop over the stores: SQLite there, PostgreSQL in
 * postgres-contract.test.ts.
 */
import { expect, it } from 'vitest';
import type { Millis } from '../../src/domain/types.js';
import type { Store } from '../../src/store/store.js';
import type { StoreHandle } from '../helpers/store-fixtures.js';
import {
  asyncRows,
  claim,
  createScheduledNewsletter,
  fakeBody,
  registerTestRun,
  seedSubscribers,
  subscriber,
} from '../helpers/store-fixtures.js';

const T0: Millis = Date.now();
const at = (offsetMs: number): Millis => T0 + offsetMs;

async function idOf(store: Store, address: string): Promise<number> {
  const found = await store.getSubscriber(address);
  if (!found) throw new Error(`no subscriber ${address}`);
  return found.id;
}

/** Who a newsletter to `lists`, begun now, claims (in id order) and how many it skips. */
async function claimedBy(
  store: Store,
  lists: string[],
  now: Millis,
): Promise<{ claimed: string[]; skipped: number }> {
  const created = await createScheduledNewsletter(store, lists, now);
  const run = await registerTestRun(store, now);
  expect(await store.beginSending(created, fakeBody({ compiledAt: now }), run.id, now)).toBeTruthy();
  const result = await claim(store, { newsletterId: created.id, runId: run.id, limit: 100, now });
  return { claimed: result.claimed.map((c) => c.address), skipped: result.skipped };
}

async function membersOf(store: Store, list: string): Promise<string[]> {
  return (await store.listSubscribers({ list, afterId: 0, limit: 1000 })).map((s) => s.address);
}

export function listContract(current: () => { store: Store; handle: StoreHandle }): void {
  it("optOut by newsletter leaves that newsletter's lists only: the audience drops them there, keeps them elsewhere", async () => {
    const { store } = current();
    await seedSubscribers(store, 'news', ['a@example.org', 'b@example.org'], at(0));
    await seedSubscribers(store, 'offers', ['a@example.org'], at(0));
    const sent = await createScheduledNewsletter(store, ['news'], at(1));
    const result = await store.optOut(
      { subscriberId: await idOf(store, 'a@example.org') },
      { kind: 'newsletter', newsletterId: sent.id },
      'one-click',
      at(2),
    );
    expect(result).toMatchObject({ address: 'a@example.org', all: false, lists: ['news'], changed: true });
    const again = await store.optOut(
      { address: 'a@example.org' },
      { kind: 'newsletter', newsletterId: sent.id },
      'page',
      at(3),
    );
    expect(again).toMatchObject({ changed: false });
    // The first record stays: when and how they left.
    expect(await store.listOptOuts('a@example.org')).toEqual([
      { list: 'news', source: 'one-click', createdAt: at(2) },
    ]);
    expect((await store.getSubscriber('a@example.org'))?.status).toBe('active');

    expect(await claimedBy(store, ['news'], at(4))).toEqual({ claimed: ['b@example.org'], skipped: 0 });
    expect(await claimedBy(store, ['offers'], at(5))).toEqual({ claimed: ['a@example.org'], skipped: 0 });
    // On two lists, one left: still in the audience through the other.
    expect((await claimedBy(store, ['news', 'offers'], at(6))).claimed).toEqual([
      'a@example.org',
      'b@example.org',
    ]);
    expect(await store.audienceSize(['news'])).toBe(1);
    const news = (await store.lists()).find((l) => l.name === 'news');
    expect(news).toEqual({ name: 'news', members: 2, reachable: 1 });
    expect(await store.optOutPage(await idOf(store, 'a@example.org'), sent.id)).toEqual({
      address: 'a@example.org',
      lists: ['news'],
      unsubscribedAll: false,
    });
  });

  it('optOut of all mail (or of a newsletter that has no lists) is the global opt-out, with its source', async () => {
    const { store } = current();
    await seedSubscribers(store, 'news', ['a@example.org', 'b@example.org'], at(0));
    const all = await store.optOut({ address: 'a@example.org' }, { kind: 'all' }, 'page-all', at(1));
    expect(all).toMatchObject({ all: true, lists: [], changed: true });
    const unknown = await store.optOut(
      { address: 'b@example.org' },
      { kind: 'newsletter', newsletterId: 987654 },
      'mailto',
      at(2),
    );
    expect(unknown).toMatchObject({ all: true, changed: true });
    expect((await store.getSubscriber('b@example.org'))?.status).toBe('unsubscribed');
    expect(
      await store.optOut({ address: 'nobody@example.org' }, { kind: 'all' }, 'command', at(3)),
    ).toBeNull();
    expect(await claimedBy(store, ['news'], at(4))).toEqual({ claimed: [], skipped: 2 });
  });

  it('a per-list opt-out outlives remove, a re-import and lists delete; a rename carries it; forget erases it', async () => {
    const { store } = current();
    await seedSubscribers(store, 'news', ['a@example.org', 'b@example.org'], at(0));
    await store.optOut({ address: 'a@example.org' }, { kind: 'lists', lists: ['news'] }, 'command', at(1));
    expect(await store.removeSubscriber('a@example.org', at(2))).toBe(true);
    await seedSubscribers(store, 'news', ['a@example.org'], at(3));
    expect(await claimedBy(store, ['news'], at(4))).toEqual({ claimed: ['b@example.org'], skipped: 0 });

    expect(await store.renameList('news', 'letters', at(5))).toEqual({ ok: true });
    expect(await store.listOptOuts('a@example.org')).toEqual([
      { list: 'letters', source: 'command', createdAt: at(1) },
    ]);
    expect((await claimedBy(store, ['letters'], at(6))).claimed).toEqual(['b@example.org']);

    // Scheduled newsletters name it: refused (the claims above left theirs `sending`).
    const refused = await store.deleteList('letters', at(7));
    expect(refused).toMatchObject({ ok: false, reason: 'in-use' });
    if (!refused.ok && refused.reason === 'in-use')
      expect(refused.newsletters.map((n) => n.status)).toEqual(['sending', 'sending']);

    // An erasure leaves nothing that names the address; the forgotten hash keeps them out instead.
    await store.forgetAddress('a@example.org', at(8));
    expect(await store.listOptOuts('a@example.org')).toEqual([]);
  });

  it('deleteList: refused while scheduled, then deletes memberships only; drafts stop naming it; opt-outs stay', async () => {
    const { store } = current();
    await seedSubscribers(store, 'old', ['a@example.org', 'b@example.org'], at(0));
    await store.optOut({ address: 'a@example.org' }, { kind: 'lists', lists: ['old'] }, 'command', at(1));
    const scheduled = await createScheduledNewsletter(store, ['old'], at(2));
    const draft = await store.createNewsletter(
      { subject: 'Draft', templatePath: 'x.mjml', from: null, lists: ['old'], scheduledAt: null },
      at(3),
    );
    expect(await store.deleteList('old', at(4))).toEqual({
      ok: false,
      reason: 'in-use',
      newsletters: [{ id: scheduled.id, subject: scheduled.subject, status: 'scheduled' }],
    });
    expect(await membersOf(store, 'old')).toHaveLength(2);
    expect(await store.cancelNewsletter(scheduled.id, at(5))).toEqual({ ok: true });
    const deleted = await store.deleteList('old', at(6));
    expect(deleted).toEqual({
      ok: true,
      members: 2,
      drafts: [{ id: draft.id, subject: 'Draft', status: 'draft' }],
    });
    expect((await store.lists()).map((l) => l.name)).toEqual([]);
    expect((await store.getSubscriber('a@example.org'))?.lists).toEqual([]);
    expect((await store.getNewsletter(draft.id))?.lists).toEqual([]);
    expect(await store.deleteList('old', at(7))).toEqual({ ok: false, reason: 'no-list' });
    // A list of that name made again keeps the person who left the old one out.
    await seedSubscribers(store, 'old', ['a@example.org', 'b@example.org'], at(8));
    expect((await claimedBy(store, ['old'], at(9))).claimed).toEqual(['b@example.org']);
  });

  it('renameList refuses a missing list and a name taken', async () => {
    const { store } = current();
    await seedSubscribers(store, 'one', ['a@example.org'], at(0));
    await seedSubscribers(store, 'two', ['b@example.org'], at(0));
    expect(await store.renameList('nope', 'x', at(1))).toEqual({ ok: false, reason: 'no-list' });
    expect(await store.renameList('one', 'two', at(1))).toEqual({ ok: false, reason: 'name-taken' });
    expect(await membersOf(store, 'one')).toEqual(['a@example.org']);
  });

  it('removeFromList takes one membership only', async () => {
    const { store } = current();
    await seedSubscribers(store, 'one', ['a@example.org'], at(0));
    await seedSubscribers(store, 'two', ['a@example.org'], at(0));
    expect(await store.removeFromList('a@example.org', 'one', at(1))).toBe('removed');
    expect(await store.removeFromList('a@example.org', 'one', at(2))).toBe('not-a-member');
    expect(await store.removeFromList('a@example.org', 'three', at(2))).toBe('no-list');
    expect(await store.removeFromList('z@example.org', 'one', at(2))).toBe('no-subscriber');
    expect((await store.getSubscriber('a@example.org'))?.lists).toEqual(['two']);
  });

  it('import --sync: the list becomes the file; others leave it, nobody is deleted, opt-outs stay', async () => {
    const { store } = current();
    await seedSubscribers(store, 'crm', ['a@example.org', 'b@example.org', 'c@example.org'], at(0));
    await store.optOut({ address: 'b@example.org' }, { kind: 'lists', lists: ['crm'] }, 'one-click', at(1));
    await store.optOut({ address: 'c@example.org' }, { kind: 'all' }, 'command', at(1));
    const file = ['b@example.org', 'c@example.org', 'd@example.org'].map((a) => subscriber(a));
    const target = { list: 'crm', fieldNames: [], now: at(2), sync: true };

    const preview = await store.importSubscribers(asyncRows(file), { ...target, dryRun: true });
    expect(preview).toEqual({ created: 1, updated: 2, addedToList: 1, leftList: 1, stayedOut: 2 });
    expect(await membersOf(store, 'crm')).toEqual(['a@example.org', 'b@example.org', 'c@example.org']);
    expect(await store.getSubscriber('d@example.org')).toBeNull();

    const summary = await store.importSubscribers(asyncRows(file), target);
    expect(summary).toEqual({ created: 1, updated: 2, addedToList: 1, leftList: 1, stayedOut: 2 });
    expect(await membersOf(store, 'crm')).toEqual(['b@example.org', 'c@example.org', 'd@example.org']);
    expect((await store.getSubscriber('a@example.org'))?.status).toBe('active');
    expect((await store.getSubscriber('c@example.org'))?.status).toBe('unsubscribed');
    expect(await claimedBy(store, ['crm'], at(3))).toEqual({ claimed: ['d@example.org'], skipped: 1 });
  });

  it('import --sync is all or nothing: a stream that fails leaves the list as it was', async () => {
    const { store } = current();
    await seedSubscribers(store, 'crm', ['a@example.org', 'b@example.org'], at(0));
    async function* failing() {
      yield subscriber('a@example.org');
      throw new Error('line 3: not an address');
    }
    await expect(
      store.importSubscribers(failing(), { list: 'crm', fieldNames: [], now: at(1), sync: true }),
    ).rejects.toThrow('not an address');
    expect(await membersOf(store, 'crm')).toEqual(['a@example.org', 'b@example.org']);
  });

  it("a row's lists (the `lists` column) join it to them", async () => {
    const { store } = current();
    const rows = [
      { ...subscriber('a@example.org', 'A', { city: 'Oslo' }), lists: ['one', 'two'] },
      { ...subscriber('b@example.org', 'B', { city: '' }), lists: [] },
      { ...subscriber('a@example.org', 'A', { city: 'Oslo' }), lists: ['three'] },
    ];
    const summary = await store.importSubscribers(asyncRows(rows), {
      list: null,
      fieldNames: ['city'],
      now: at(0),
      rowLists: true,
    });
    expect(summary).toEqual({ created: 2, updated: 1, addedToList: 0 });
    expect((await store.getSubscriber('a@example.org'))?.lists.sort()).toEqual(['one', 'three', 'two']);
    expect((await store.getSubscriber('b@example.org'))?.lists).toEqual([]);
  });

  it('resubscribe clears opt-outs (all, or some lists), records who and why, and refuses a bounce', async () => {
    const { store } = current();
    await seedSubscribers(store, 'news', ['a@example.org', 'b@example.org'], at(0));
    await seedSubscribers(store, 'offers', ['a@example.org'], at(0));
    await store.optOut(
      { address: 'a@example.org' },
      { kind: 'lists', lists: ['news', 'offers'] },
      'page',
      at(1),
    );
    await store.optOut({ address: 'a@example.org' }, { kind: 'all' }, 'page-all', at(1));

    const some = await store.resubscribe('a@example.org', ['offers'], 'ada', 'asked by phone', at(2));
    expect(some).toEqual({
      ok: true,
      subscriberId: await idOf(store, 'a@example.org'),
      clearedAll: false,
      clearedLists: ['offers'],
      stillUnsubscribedAll: true,
    });
    const rest = await store.resubscribe('a@example.org', null, 'ada', 'asked again', at(3));
    expect(rest).toMatchObject({
      ok: true,
      clearedAll: true,
      clearedLists: ['news'],
      stillUnsubscribedAll: false,
    });
    expect(await store.listOptOuts('a@example.org')).toEqual([]);
    expect((await store.getSubscriber('a@example.org'))?.status).toBe('active');

    await store.suppress('b@example.org', '5.1.1 no such user', 'bounce', at(4));
    expect(await store.resubscribe('b@example.org', null, 'ada', 'x', at(5))).toEqual({
      ok: false,
      reason: 'suppressed',
      suppression: { reason: '5.1.1 no such user', source: 'bounce' },
    });
    expect(await store.resubscribe('z@example.org', null, 'ada', 'x', at(5))).toEqual({
      ok: false,
      reason: 'no-subscriber',
    });
  });
}
