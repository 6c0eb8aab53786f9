/**
 * The Store contract: what the engine relies on, checked against every implementation (the
 * factories in test/helpers/store-fixtures.ts). Nothing here knows which database it talks to,
 * except the last block, which races real processes on one SQLite file.
 *
 * Times are real epoch milliseconds passed as `now`; nothing sleeps.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { InputError } from '../../src/domain/errors.js';
import type { ReconcileResult } from '../../src/domain/reconcile.js';
import { audienceClosed } from '../../src/domain/audience.js';
import {
  type ClaimedDelivery,
  type DeliveryCounts,
  type DeliveryState,
  type Millis,
  NEWSLETTER_STATUSES,
} from '../../src/domain/types.js';
import type { OutcomeWrite } from '../../src/domain/ledger.js';
import type { Store } from '../../src/store/store.js';
import {
  addresses,
  asyncRows,
  BUSY_TIMEOUT_MS,
  claim,
  createScheduledNewsletter,
  fakeBody,
  makeStoreFactories,
  registerTestRun,
  type StoreHandle,
  seedSubscribers,
  sendingNewsletter,
  sentWrite,
  subscriber,
  testMessageId,
} from '../helpers/store-fixtures.js';
import { closeRunLeavingClaims, damage, forceRetry } from '../helpers/damage.js';
import { lifeContract } from './store-contract-life.js';
import { listContract } from './store-contract-lists.js';
import { optOutContract } from './store-contract-optouts.js';
import { outcomeContract } from './store-contract-outcomes.js';
import { pruneContract } from './store-contract-prune.js';
import { reportContract } from './store-contract-reports.js';
import { runEndContract } from './store-contract-run-end.js';
import { segmentContract } from './store-contract-segments.js';

const T0: Millis = Date.now();
const at = (offsetMs: number): Millis => T0 + offsetMs;
/**
 * PostgreSQL keeps leases on the database server's clock, which a test moves by passing a later
 * `now` but which also ticks while the test runs (src/store/postgres/lease-clock.ts): lease times
 * are checked to this precision, never to the millisecond.
 */
const LEASE_SLACK = 500;

const STATES: readonly DeliveryState[] = ['claimed', 'sent', 'failed', 'retry', 'unknown', 'skipped'];

/** audience = pending + every state, and the audience is what we expect it to be. */
async function expectCounts(
  store: Store,
  newsletterId: number,
  audience: number,
  expected: Partial<DeliveryCounts> = {},
) {
  const counts = await store.counts(newsletterId);
  expect(counts.pending + STATES.reduce((sum, state) => sum + counts[state], 0)).toBe(counts.audience);
  expect(counts.audience).toBe(audience);
  expect(counts).toMatchObject(expected);
  return counts;
}

function write(
  deliveryId: number,
  state: OutcomeWrite['state'],
  extra: Partial<OutcomeWrite> = {},
): OutcomeWrite {
  return {
    deliveryId,
    state,
    attempts: 1,
    nextAttemptAt: null,
    smtpReply: state === 'sent' ? '250 2.0.0 Ok' : `reply for ${state}`,
    queueId: null,
    suppressAddress: null,
    ...extra,
  };
}

/** Claim loops end when nothing is left; a store that hands rows out again must fail, not hang. */
function stopRunaway(turn: number, max: number): void {
  if (turn >= max) throw new Error(`still claiming after ${max} batches: the same rows come back`);
}

/** A reconcile result: nothing changed, nothing left alone, unless told otherwise. */
function reconciled(expected: Partial<ReconcileResult>): ReconcileResult {
  return {
    changed: 0,
    stranded: 0,
    notUnknown: [],
    claimedByLiveRun: [],
    cancelledRetries: 0,
    refused: null,
    ...expected,
  };
}

async function stateOf(store: Store, newsletterId: number, deliveryId: number) {
  const rows = await store.deliveries(newsletterId, { limit: 100_000 });
  const row = rows.find((r) => r.id === deliveryId);
  if (!row) throw new Error(`no delivery ${deliveryId}`);
  return row;
}

describe.each(makeStoreFactories())('Store contract: $name', (factory) => {
  let handle: StoreHandle;
  let store: Store;

  beforeEach(async () => {
    handle = await factory.open();
    store = handle.store;
  });

  afterEach(async () => {
    await handle.cleanup();
  });

  describe('nobody stranded', () => runEndContract(() => ({ store, handle })));
  describe('opt-outs and erasure', () => optOutContract(() => ({ store, handle })));
  describe('lists and per-list opt-outs', () => listContract(() => ({ store, handle })));
  describe('prune', () => pruneContract(() => ({ store, handle })));
  describe('authenticated reports', () => reportContract(() => ({ store, handle })));
  describe("a newsletter's life", () => lifeContract(() => ({ store, handle })));
  describe('segments', () => segmentContract(() => ({ store, handle })));
  describe('outcomes and the fence', () => outcomeContract(() => ({ store, handle })));

  describe('schema', () => {
    it('is at the latest version after migrate, and migrating again changes nothing', async () => {
      const version = await store.schemaVersion();
      expect(version.latest).toBeGreaterThan(0);
      expect(version.current).toBe(version.latest);

      await seedSubscribers(store, 'news', ['ann@example.org'], at(0));
      await store.setMeta('host_id', 'abc');
      expect(await store.migrate()).toEqual({ from: version.latest, to: version.latest });
      expect(await store.migrate()).toEqual({ from: version.latest, to: version.latest });
      expect(await store.schemaVersion()).toEqual(version);
      expect(await store.getMeta('host_id')).toBe('abc');
      expect(await store.getSubscriber('ann@example.org')).not.toBeNull();
    });

    it('a second connection sees the schema as current', async () => {
      const other = await handle.connect();
      const version = await other.schemaVersion();
      expect(version.current).toBe(version.latest);
      expect(await other.migrate()).toEqual({ from: version.latest, to: version.latest });
    });
  });

  describe('subscribers', () => {
    it('imports in one transaction: a source that throws midway imports nothing', async () => {
      async function* broken() {
        yield subscriber('ann@example.org', 'Ann', { city: 'Oslo' });
        yield subscriber('bob@example.org', 'Bob', { city: 'Bergen' });
        throw new Error('the CSV broke on line 4');
      }
      await expect(
        store.importSubscribers(broken(), { list: 'news', fieldNames: ['city'], now: at(0) }),
      ).rejects.toThrow('the CSV broke on line 4');
      expect(await store.getSubscriber('ann@example.org')).toBeNull();
      expect(await store.getSubscriber('bob@example.org')).toBeNull();
      expect(await store.lists()).toEqual([]);
      expect(await store.knownFieldNames()).toEqual([]);
      expect(await store.listSubscribers({ afterId: 0, limit: 10 })).toEqual([]);

      // The store is usable afterwards (no transaction left open).
      const summary = await seedSubscribers(store, 'news', ['ann@example.org'], at(1));
      expect(summary).toEqual({ created: 1, updated: 0, addedToList: 1 });
    });

    it('upserts by the normalised address', async () => {
      const first = await seedSubscribers(
        store,
        'news',
        [subscriber('Ann.Lee@Example.ORG', 'Ann', { city: 'Oslo' })],
        at(0),
      );
      expect(first).toEqual({ created: 1, updated: 0, addedToList: 1 });
      const again = await seedSubscribers(
        store,
        'news',
        [
          subscriber('ann.lee@example.org', 'Ann Lee', { team: 'blue' }),
          subscriber(' ANN.LEE@example.org ', 'A. Lee'),
        ],
        at(1),
      );
      expect(again).toEqual({ created: 0, updated: 2, addedToList: 0 });
      const all = await store.listSubscribers({ afterId: 0, limit: 10 });
      expect(all).toHaveLength(1);
      expect(all[0]).toMatchObject({
        address: 'ann.lee@example.org',
        email: 'ANN.LEE@example.org',
        name: 'A. Lee',
        fields: { city: 'Oslo', team: 'blue' },
        status: 'active',
        lists: ['news'],
      });
      expect(await store.audienceSize(['news'])).toBe(1);
      expect(await store.knownFieldNames()).toEqual(['city', 'team']);
    });

    it('keeps an unsubscribed subscriber unsubscribed when the list is imported again', async () => {
      await seedSubscribers(store, 'news', ['ann@example.org', 'bob@example.org'], at(0));
      expect(await store.unsubscribe('ann@example.org', at(1))).toBe(true);
      expect(await store.unsubscribe('ann@example.org', at(2))).toBe(false);
      await seedSubscribers(store, 'news', ['Ann@Example.org', 'bob@example.org'], at(3));
      await seedSubscribers(store, 'other', ['ann@example.org'], at(4));
      expect(await store.getSubscriber('ann@example.org')).toMatchObject({
        status: 'unsubscribed',
        lists: ['news', 'other'],
      });
      expect(await store.getSubscriber('bob@example.org')).toMatchObject({ status: 'active' });
    });

    it('lists count every member, and apart those a newsletter would reach (not unsubscribed, not suppressed)', async () => {
      await seedSubscribers(store, 'news', ['ann@example.org', 'bob@example.org', 'cy@example.org'], at(0));
      await seedSubscribers(store, 'other', ['ann@example.org'], at(0));
      await store.unsubscribe('ann@example.org', at(1));
      await store.suppress('bob@example.org', '550 5.1.1 no such user', 'smtp', at(1));
      expect(await store.lists()).toEqual([
        { name: 'news', members: 3, reachable: 1 },
        { name: 'other', members: 1, reachable: 0 },
      ]);
    });
  });

  describe('newsletters', () => {
    it('createNewsletter with an unknown list throws InputError and creates nothing', async () => {
      await seedSubscribers(store, 'news', ['ann@example.org'], at(0));
      await expect(createScheduledNewsletter(store, ['news', 'nope'], at(1))).rejects.toBeInstanceOf(
        InputError,
      );
      await expect(createScheduledNewsletter(store, ['nope'], at(1))).rejects.toBeInstanceOf(InputError);
      expect(await store.listNewsletters()).toEqual([]);
      expect(await store.dueNewsletters(at(10))).toEqual([]);
      expect(await store.lists()).toEqual([{ name: 'news', members: 1, reachable: 1 }]);
    });

    it('creates a draft without a time, a scheduled newsletter with one', async () => {
      await seedSubscribers(store, 'news', ['ann@example.org'], at(0));
      const draft = await store.createNewsletter(
        { subject: 'Draft', templatePath: 'd.mjml', from: null, lists: ['news'], scheduledAt: null },
        at(1),
      );
      const due = await createScheduledNewsletter(store, ['news'], at(1));
      expect(draft).toMatchObject({ status: 'draft', lists: ['news'], body: null, scheduledAt: null });
      expect(due).toMatchObject({ status: 'scheduled', lists: ['news'], body: null });
      expect((await store.dueNewsletters(at(1))).map((n) => n.id)).toEqual([due.id]);
      expect(await store.dueNewsletters(at(-120_000))).toEqual([]);
    });

    it('beginSending is a compare-and-set that stores the body with the status', async () => {
      await seedSubscribers(store, 'news', ['ann@example.org'], at(0));
      const newsletter = await createScheduledNewsletter(store, ['news'], at(0));
      const first = await registerTestRun(store, at(0));
      const second = await registerTestRun(store, at(0));
      const bodies = [
        fakeBody({ compiledAt: at(1) }),
        fakeBody({ subject: 'Other {{name}}', compiledAt: at(1) }),
      ];
      const other = await handle.connect();

      // Two runs on two connections build the same due newsletter and race to begin it.
      const results = await Promise.all([
        store.beginSending(newsletter, bodies[0]!, first.id, at(1)),
        other.beginSending(newsletter, bodies[1]!, second.id, at(1)),
      ]);
      expect(results.filter(Boolean)).toHaveLength(1);
      const winner = results[0] ? 0 : 1;
      expect(await store.beginSending(newsletter, bodies[0]!, first.id, at(2))).toBe(false);
      expect(await other.beginSending(newsletter, bodies[1]!, second.id, at(2))).toBe(false);

      // The body stored is the winner's, written with the status change.
      const stored = await store.getNewsletter(newsletter.id);
      expect(stored).toMatchObject({
        status: 'sending',
        body: bodies[winner],
        startedByRun: [first, second][winner]!.id,
        startedAt: at(1),
      });
      expect(await store.dueNewsletters(at(10))).toEqual([]);
      expect((await store.sendingNewsletters()).map((n) => n.id)).toEqual([newsletter.id]);
    });

    it('beginSending refuses a draft, a cancelled and a failed newsletter', async () => {
      await seedSubscribers(store, 'news', ['ann@example.org'], at(0));
      const run = await registerTestRun(store, at(0));
      const draft = await store.createNewsletter(
        { subject: 'Draft', templatePath: 'd.mjml', from: null, lists: ['news'], scheduledAt: null },
        at(0),
      );
      const cancelled = await createScheduledNewsletter(store, ['news'], at(0));
      expect(await store.cancelNewsletter(cancelled.id, at(1))).toEqual({ ok: true });
      const failed = await createScheduledNewsletter(store, ['news'], at(0));
      expect(await store.markBuildFailed(failed, 'unknown field {{city}}', at(1))).toBe(true);
      for (const newsletter of [draft, cancelled, failed]) {
        // As each was read now: the status alone refuses it.
        const read = (await store.getNewsletter(newsletter.id))!;
        expect(await store.beginSending(read, fakeBody(), run.id, at(2))).toBe(false);
        expect((await store.getNewsletter(newsletter.id))?.body).toBeNull();
      }
    });

    it('markBuildFailed only moves a scheduled newsletter', async () => {
      await seedSubscribers(store, 'news', ['ann@example.org'], at(0));
      const run = await registerTestRun(store, at(0));
      const draft = await store.createNewsletter(
        { subject: 'Draft', templatePath: 'd.mjml', from: null, lists: ['news'], scheduledAt: null },
        at(0),
      );
      expect(await store.markBuildFailed(draft, 'broken', at(1))).toBe(false);
      expect((await store.getNewsletter(draft.id))?.status).toBe('draft');

      const sending = await createScheduledNewsletter(store, ['news'], at(0));
      expect(await store.beginSending(sending, fakeBody(), run.id, at(1))).toBe(true);
      expect(await store.markBuildFailed(sending, 'broken', at(2))).toBe(false);
      expect((await store.getNewsletter(sending.id))?.status).toBe('sending');

      const scheduled = await createScheduledNewsletter(store, ['news'], at(0));
      expect(await store.markBuildFailed(scheduled, 'mjml: unclosed tag', at(3))).toBe(true);
      expect(await store.getNewsletter(scheduled.id)).toMatchObject({
        status: 'failed',
        failureReason: 'mjml: unclosed tag',
        body: null,
        finishedAt: at(3),
      });
      expect(await store.markBuildFailed(scheduled, 'again', at(4))).toBe(false);
      expect(await store.beginSending(scheduled, fakeBody(), run.id, at(5))).toBe(false);
      // A failed newsletter sends nothing and has nobody pending.
      await expectCounts(store, scheduled.id, 0, { pending: 0 });
    });
  });

  describe('claims', () => {
    it('inserts ledger rows, never more than the limit, and skips the unsubscribed and the suppressed', async () => {
      const recipients = addresses(10);
      const { newsletter } = await sendingNewsletter(store, { list: 'news', recipients, now: at(0) });
      await store.unsubscribe(recipients[1]!, at(1));
      await store.suppress(recipients[4]!, '550 5.1.1 no such user', 'smtp', at(1));
      const run = await registerTestRun(store, at(1));
      await expectCounts(store, newsletter.id, 10, { pending: 10 });

      const first = await claim(store, { newsletterId: newsletter.id, runId: run.id, limit: 3, now: at(2) });
      expect(first.stillSending).toBe(true);
      expect(first.claimed.length + first.skipped).toBeLessThanOrEqual(3);
      expect(first.claimed.map((c) => c.address)).toEqual([recipients[0], recipients[2]]);
      expect(first.skipped).toBe(1);
      expect(first.claimed[0]).toMatchObject({
        newsletterId: newsletter.id,
        email: recipients[0],
        attempts: 0,
        messageId: testMessageId(newsletter.id)(recipients[0]!),
      });
      await expectCounts(store, newsletter.id, 10, { pending: 7, claimed: 2, skipped: 1 });

      const rows = await store.deliveries(newsletter.id, { limit: 100 });
      expect(rows.map((r) => [r.address, r.state, r.runId])).toEqual([
        [recipients[0], 'claimed', run.id],
        [recipients[1], 'skipped', run.id],
        [recipients[2], 'claimed', run.id],
      ]);
      expect(rows[1]?.reason).toMatch(/unsubscribed/);

      let after = first.lastSubscriberId;
      const seen = new Set(first.claimed.map((c) => c.address));
      let skipped = first.skipped;
      for (let turn = 0; ; turn++) {
        stopRunaway(turn, 10);
        const next = await claim(store, {
          newsletterId: newsletter.id,
          runId: run.id,
          limit: 3,
          now: at(3),
          afterSubscriberId: after,
        });
        expect(next.claimed.length + next.skipped).toBeLessThanOrEqual(3);
        if (next.claimed.length === 0 && next.skipped === 0) break;
        for (const c of next.claimed) {
          expect(seen.has(c.address)).toBe(false);
          seen.add(c.address);
        }
        skipped += next.skipped;
        after = next.lastSubscriberId;
        await expectCounts(store, newsletter.id, 10);
      }
      expect(seen.size).toBe(8);
      expect(skipped).toBe(2);
      const suppressed = await store.deliveries(newsletter.id, { state: 'skipped', limit: 100 });
      expect(suppressed.map((r) => r.address)).toEqual([recipients[1], recipients[4]]);
      expect(suppressed[1]?.reason).toMatch(/suppressed/);
      await expectCounts(store, newsletter.id, 10, { pending: 0, claimed: 8, skipped: 2 });
    });

    it('claims nothing and says so once the newsletter is cancelled', async () => {
      const recipients = addresses(6);
      const { newsletter } = await sendingNewsletter(store, { list: 'news', recipients, now: at(0) });
      const run = await registerTestRun(store, at(0));
      const first = await claim(store, { newsletterId: newsletter.id, runId: run.id, limit: 3, now: at(1) });
      expect(first.claimed).toHaveLength(3);
      // One row waits for a retry, one is still in flight.
      await store.recordOutcomes(
        run.id,
        [
          write(first.claimed[0]!.deliveryId, 'retry', { nextAttemptAt: at(1000) }),
          sentWrite(first.claimed[1]!),
        ],
        at(2),
      );

      expect(await store.cancelNewsletter(newsletter.id, at(3))).toEqual({ ok: true });
      const after = await claim(store, {
        newsletterId: newsletter.id,
        runId: run.id,
        limit: 3,
        now: at(2000),
      });
      expect(after).toMatchObject({ claimed: [], skipped: 0, stillSending: false });
      // The retry is recorded as skipped; the run in flight may still record its outcome.
      await expectCounts(store, newsletter.id, 6, { pending: 3, sent: 1, claimed: 1, skipped: 1, retry: 0 });
      expect(await store.recordOutcomes(run.id, [sentWrite(first.claimed[2]!)], at(4))).toMatchObject({
        applied: 1,
        refused: 0,
      });
      await expectCounts(store, newsletter.id, 6, { pending: 3, sent: 2, claimed: 0, skipped: 1 });
      expect(await store.completeIfDone(newsletter.id, at(5))).toBe(false);
      expect((await store.getNewsletter(newsletter.id))?.status).toBe('cancelled');
      expect(await store.cancelNewsletter(newsletter.id, at(6))).toEqual({ ok: false, status: 'cancelled' });
    });

    it('claims nothing for a newsletter that is not sending', async () => {
      await seedSubscribers(store, 'news', addresses(3), at(0));
      const scheduled = await createScheduledNewsletter(store, ['news'], at(0));
      const run = await registerTestRun(store, at(0));
      const result = await claim(store, { newsletterId: scheduled.id, runId: run.id, limit: 5, now: at(1) });
      expect(result).toMatchObject({ claimed: [], skipped: 0, stillSending: false });
      expect(await store.deliveries(scheduled.id, { limit: 10 })).toEqual([]);
    });

    it('two runs claiming in turn never get the same address', async () => {
      const recipients = addresses(25);
      const { newsletter } = await sendingNewsletter(store, { list: 'news', recipients, now: at(0) });
      const a = await registerTestRun(store, at(0));
      const b = await registerTestRun(store, at(0));
      const owner = new Map<string, number>();
      for (let turn = 0; ; turn++) {
        stopRunaway(turn, 30);
        const runId = turn % 2 === 0 ? a.id : b.id;
        // Both runs start from hint 0, as a fresh run does: the ledger, not the hint, decides.
        const result = await claim(store, {
          newsletterId: newsletter.id,
          runId,
          limit: 1 + (turn % 4),
          now: at(turn),
        });
        if (result.claimed.length === 0) break;
        for (const c of result.claimed) {
          expect(owner.get(c.address)).toBeUndefined();
          owner.set(c.address, runId);
        }
      }
      expect([...owner.keys()].sort()).toEqual(recipients);
      expect(new Set(owner.values())).toEqual(new Set([a.id, b.id]));
      await expectCounts(store, newsletter.id, 25, { pending: 0, claimed: 25 });
    });

    it('runs on separate connections claiming at once never get the same address', async () => {
      const recipients = addresses(120);
      const { newsletter } = await sendingNewsletter(store, { list: 'news', recipients, now: at(0) });
      const connections = [store, await handle.connect(), await handle.connect(), await handle.connect()];
      const results = await Promise.all(
        connections.map(async (connection, index) => {
          const run = await registerTestRun(connection, at(0));
          const mine: string[] = [];
          let after = 0;
          for (let turn = 0; ; turn++) {
            stopRunaway(turn, 150);
            const result = await claim(connection, {
              newsletterId: newsletter.id,
              runId: run.id,
              limit: 1 + ((turn + index) % 5),
              now: at(turn),
              afterSubscriberId: after,
            });
            if (result.claimed.length === 0 && result.skipped === 0) break;
            after = result.lastSubscriberId;
            mine.push(...result.claimed.map((c) => c.address));
            await connection.recordOutcomes(run.id, result.claimed.map(sentWrite), at(turn));
          }
          return mine;
        }),
      );
      const all = results.flat();
      expect(all.length).toBe(recipients.length);
      expect(new Set(all).size).toBe(recipients.length);
      await expectCounts(store, newsletter.id, 120, { pending: 0, sent: 120 });
      expect(await store.completeIfDone(newsletter.id, at(1000))).toBe(true);
    });
  });

  describe('fencing and leases', () => {
    it('recordOutcomes is fenced by the run that holds the claim', async () => {
      const recipients = addresses(3);
      const { newsletter } = await sendingNewsletter(store, { list: 'news', recipients, now: at(0) });
      const owner = await registerTestRun(store, at(0));
      const intruder = await registerTestRun(store, at(0));
      const { claimed } = await claim(store, {
        newsletterId: newsletter.id,
        runId: owner.id,
        limit: 3,
        now: at(1),
      });
      const [x, y, z] = claimed;

      expect(await store.recordOutcomes(intruder.id, [sentWrite(x!)], at(2))).toMatchObject({
        applied: 0,
        refused: 1,
      });
      expect((await stateOf(store, newsletter.id, x!.deliveryId)).state).toBe('claimed');

      const mixed = await store.recordOutcomes(
        owner.id,
        [
          sentWrite(x!),
          write(y!.deliveryId, 'failed', {
            smtpReply: '550 5.1.1 no such user',
            suppressAddress: { address: y!.address, reason: '550 5.1.1 no such user' },
          }),
        ],
        at(3),
      );
      expect(mixed).toMatchObject({ applied: 2, refused: 0 });
      // A row with its outcome is no longer `claimed`: the same run cannot overwrite it either.
      expect(await store.recordOutcomes(owner.id, [write(x!.deliveryId, 'failed')], at(4))).toMatchObject({
        applied: 0,
        refused: 1,
      });
      const xRow = await stateOf(store, newsletter.id, x!.deliveryId);
      expect(xRow).toMatchObject({
        state: 'sent',
        attempts: 1,
        queueId: 'TEST',
        smtpReply: '250 2.0.0 Ok: queued as TEST',
      });
      const yRow = await stateOf(store, newsletter.id, y!.deliveryId);
      expect(yRow).toMatchObject({ state: 'failed', reason: '550 5.1.1 no such user' });

      // The 5.1.x suppression holds for the next newsletter.
      const next = await createScheduledNewsletter(store, ['news'], at(5));
      expect(await store.beginSending(next, fakeBody(), owner.id, at(5))).toBe(true);
      const again = await claim(store, { newsletterId: next.id, runId: owner.id, limit: 10, now: at(6) });
      expect(again.claimed.map((c) => c.address).sort()).toEqual([x!.address, z!.address].sort());
      expect(again.skipped).toBe(1);
      await expectCounts(store, newsletter.id, 3, { sent: 1, failed: 1, claimed: 1 });
    });

    it('expireRuns turns the claims of expired and dead runs into unknown, ends those runs, and fences them', async () => {
      const recipients = addresses(9);
      const { newsletter } = await sendingNewsletter(store, { list: 'news', recipients, now: at(0) });
      const expiring = await registerTestRun(store, at(0), { leaseMs: 10_000 });
      const dead = await registerTestRun(store, at(0), { leaseMs: 600_000 });
      const healthy = await registerTestRun(store, at(0), { leaseMs: 600_000 });
      const claims = new Map<number, Awaited<ReturnType<typeof claim>>>();
      for (const run of [expiring, dead, healthy]) {
        claims.set(
          run.id,
          await claim(store, { newsletterId: newsletter.id, runId: run.id, limit: 3, now: at(1) }),
        );
      }

      // Not yet: the lease still covers `now`. The dead run goes at once, whatever its lease.
      expect(await store.expireRuns(at(10_000 - LEASE_SLACK), [])).toMatchObject({ runs: 0, unknown: 0 });
      expect(await store.expireRuns(at(10_000 - LEASE_SLACK), [dead.id])).toMatchObject({
        runs: 1,
        unknown: 3,
      });
      expect((await store.liveRuns()).map((r) => r.id)).toContain(expiring.id);
      expect(await store.expireRuns(at(10_000 + LEASE_SLACK), [])).toMatchObject({ runs: 1, unknown: 3 });
      const live = (await store.liveRuns()).map((r) => r.id);
      expect(live).toContain(healthy.id);
      expect(live).not.toContain(expiring.id);
      expect(live).not.toContain(dead.id);
      const ended = (await store.listRuns(10)).filter((r) => r.id === expiring.id || r.id === dead.id);
      expect(ended.map((run) => run.endedAt).sort()).toEqual([
        at(10_000 - LEASE_SLACK),
        at(10_000 + LEASE_SLACK),
      ]);
      for (const run of ended) expect(run).toMatchObject({ outcome: 'lost', counts: { unknown: 3 } });

      await expectCounts(store, newsletter.id, 9, { unknown: 6, claimed: 3, pending: 0 });
      for (const run of [expiring, dead]) {
        const mine = claims.get(run.id)!.claimed;
        for (const row of mine)
          expect((await stateOf(store, newsletter.id, row.deliveryId)).state).toBe('unknown');
        // A run that lost its lease finds every late write refused.
        expect(await store.recordOutcomes(run.id, mine.map(sentWrite), at(10_002))).toMatchObject({
          applied: 0,
          refused: 3,
        });
        expect(
          await store.releaseClaims(
            run.id,
            mine.map((c) => c.deliveryId),
            at(10_002),
          ),
        ).toBe(0);
      }
      await expectCounts(store, newsletter.id, 9, { unknown: 6, claimed: 3 });

      // Nothing expires twice.
      expect(await store.expireRuns(at(10_003), [dead.id])).toMatchObject({ runs: 0, unknown: 0 });
      // Unknown is never claimed again on its own, so the newsletter can finish with it.
      const healthyClaims = claims.get(healthy.id)!.claimed;
      await store.recordOutcomes(healthy.id, healthyClaims.map(sentWrite), at(10_004));
      const more = await claim(store, {
        newsletterId: newsletter.id,
        runId: healthy.id,
        limit: 10,
        now: at(10_005),
      });
      expect(more).toMatchObject({ claimed: [], skipped: 0 });
      expect(await store.completeIfDone(newsletter.id, at(10_006))).toBe(true);
    });

    it('renewLease extends a live lease and fails once the run was expired', async () => {
      const run = await registerTestRun(store, at(0), { leaseMs: 10_000 });
      expect(Math.abs(run.leaseUntil - at(10_000))).toBeLessThanOrEqual(LEASE_SLACK);
      expect(await store.renewLease(run.id, at(8_000), 10_000)).toBe(true);
      // The renewed lease covers what the first would not have.
      expect(await store.expireRuns(at(15_000), [])).toMatchObject({ runs: 0, unknown: 0 });
      const renewed = (await store.liveRuns()).find((r) => r.id === run.id)!.leaseUntil;
      expect(Math.abs(renewed - at(18_000))).toBeLessThanOrEqual(LEASE_SLACK);
      expect(await store.expireRuns(at(18_000 - LEASE_SLACK), [])).toMatchObject({ runs: 0, unknown: 0 });

      expect(await store.expireRuns(at(18_001 + LEASE_SLACK), [])).toMatchObject({ runs: 1, unknown: 0 });
      expect(await store.renewLease(run.id, at(18_002), 10_000)).toBe(false);
      expect(await store.renewLease(run.id, at(18_003), 10_000)).toBe(false);
      expect((await store.liveRuns()).map((r) => r.id)).not.toContain(run.id);
    });

    it('a run that was ended claims nothing more', async () => {
      const recipients = addresses(4);
      const { newsletter } = await sendingNewsletter(store, { list: 'news', recipients, now: at(0) });
      const run = await registerTestRun(store, at(0));
      await claim(store, { newsletterId: newsletter.id, runId: run.id, limit: 1, now: at(1) });
      expect(await store.expireRuns(at(2), [run.id])).toMatchObject({ runs: 1, unknown: 1 });
      // Its local view of the lease may still look valid: the store must not let it claim rows
      // that no later expireRuns would ever turn into `unknown`.
      const late = await claim(store, { newsletterId: newsletter.id, runId: run.id, limit: 3, now: at(3) });
      expect(late.claimed).toEqual([]);
      await expectCounts(store, newsletter.id, 4, { unknown: 1, claimed: 0, pending: 3 });
    });

    it('releaseClaims puts a run’s own claims back to retry, due now, attempts unchanged', async () => {
      const recipients = addresses(4);
      const { newsletter } = await sendingNewsletter(store, { list: 'news', recipients, now: at(0) });
      const run = await registerTestRun(store, at(0));
      const other = await registerTestRun(store, at(0));
      const first = await claim(store, { newsletterId: newsletter.id, runId: run.id, limit: 2, now: at(1) });
      // One was tried before: a 4xx gave it attempts = 1 and a retry that is now due.
      await store.recordOutcomes(
        run.id,
        [write(first.claimed[0]!.deliveryId, 'retry', { nextAttemptAt: at(5) })],
        at(2),
      );
      const second = await claim(store, { newsletterId: newsletter.id, runId: run.id, limit: 2, now: at(5) });
      expect(second.claimed.map((c) => [c.address, c.attempts])).toEqual([
        [recipients[0], 1],
        [recipients[2], 0],
      ]);
      const ids = second.claimed.map((c) => c.deliveryId);

      expect(await store.releaseClaims(other.id, ids, at(6))).toBe(0);
      expect(await store.releaseClaims(run.id, ids, at(7))).toBe(2);
      expect(await store.releaseClaims(run.id, ids, at(8))).toBe(0);
      for (const [id, attempts] of [
        [ids[0]!, 1],
        [ids[1]!, 0],
      ]) {
        expect(await stateOf(store, newsletter.id, id!)).toMatchObject({
          state: 'retry',
          nextAttemptAt: at(7),
          attempts,
        });
      }
      await expectCounts(store, newsletter.id, 4, { retry: 2, claimed: 1, pending: 1 });

      const again = await claim(store, {
        newsletterId: newsletter.id,
        runId: other.id,
        limit: 2,
        now: at(7),
      });
      expect(again.claimed.map((c) => [c.address, c.attempts]).sort()).toEqual([
        [recipients[0], 1],
        [recipients[2], 0],
      ]);
    });

    it('a retry row is claimed again when it is due, and not before', async () => {
      const recipients = addresses(3);
      const { newsletter } = await sendingNewsletter(store, { list: 'news', recipients, now: at(0) });
      const run = await registerTestRun(store, at(0), { leaseMs: 600_000 });
      const first = await claim(store, { newsletterId: newsletter.id, runId: run.id, limit: 1, now: at(1) });
      const x = first.claimed[0]!;
      await store.recordOutcomes(
        run.id,
        [write(x.deliveryId, 'retry', { nextAttemptAt: at(60_000), smtpReply: '451 4.7.1 try later' })],
        at(2),
      );
      await expectCounts(store, newsletter.id, 3, { retry: 1, pending: 2 });

      const early = await claim(store, {
        newsletterId: newsletter.id,
        runId: run.id,
        limit: 5,
        now: at(59_999),
      });
      expect(early.claimed.map((c) => c.address)).toEqual([recipients[1], recipients[2]]);
      await store.recordOutcomes(run.id, early.claimed.map(sentWrite), at(59_999));
      expect(
        await claim(store, { newsletterId: newsletter.id, runId: run.id, limit: 5, now: at(59_999) }),
      ).toMatchObject({
        claimed: [],
        skipped: 0,
      });
      expect(await store.completeIfDone(newsletter.id, at(59_999))).toBe(false);

      const due = await claim(store, {
        newsletterId: newsletter.id,
        runId: run.id,
        limit: 5,
        now: at(60_000),
      });
      expect(due.claimed).toEqual([
        expect.objectContaining({ address: x.address, deliveryId: x.deliveryId, attempts: 1 }),
      ]);
      expect(due.claimed[0]?.messageId).toBe(x.messageId);
      await store.recordOutcomes(run.id, due.claimed.map(sentWrite), at(60_001));
      expect((await stateOf(store, newsletter.id, x.deliveryId)).attempts).toBe(2);
      expect(await store.completeIfDone(newsletter.id, at(60_002))).toBe(true);
    });

    it('due retries leave the rest of the batch to new recipients, in order, none lost on the next claim', async () => {
      // Only the room the due retries leave goes to new recipients, and the hint (lastSubscriberId)
      // must not pass anyone the claim did not take (a claim that reads more candidates than it
      // uses would lose them: issue 17, session 7 tried one on PostgreSQL).
      const recipients = addresses(8);
      const { newsletter } = await sendingNewsletter(store, { list: 'news', recipients, now: at(0) });
      const run = await registerTestRun(store, at(0), { leaseMs: 600_000 });
      const first = await claim(store, { newsletterId: newsletter.id, runId: run.id, limit: 2, now: at(1) });
      expect(first.claimed.map((c) => c.address)).toEqual([recipients[0], recipients[1]]);
      await store.recordOutcomes(
        run.id,
        first.claimed.map((c) =>
          write(c.deliveryId, 'retry', { nextAttemptAt: at(10), smtpReply: '451 4.7.1 later' }),
        ),
        at(2),
      );

      const mixed = await claim(store, {
        newsletterId: newsletter.id,
        runId: run.id,
        limit: 3,
        now: at(10),
        afterSubscriberId: first.lastSubscriberId,
      });
      expect(mixed.claimed.map((c) => [c.address, c.attempts])).toEqual([
        [recipients[0], 1],
        [recipients[1], 1],
        [recipients[2], 0],
      ]);
      await store.recordOutcomes(run.id, mixed.claimed.map(sentWrite), at(11));

      const rest = await claim(store, {
        newsletterId: newsletter.id,
        runId: run.id,
        limit: 10,
        now: at(12),
        afterSubscriberId: mixed.lastSubscriberId,
      });
      expect(rest.claimed.map((c) => c.address)).toEqual(recipients.slice(3));
      await store.recordOutcomes(run.id, rest.claimed.map(sentWrite), at(13));
      expect(await store.completeIfDone(newsletter.id, at(14))).toBe(true);
      await expectCounts(store, newsletter.id, 8, { sent: 8, pending: 0 });
    });

    it('a due retry of someone who unsubscribed meanwhile is skipped, not claimed', async () => {
      const recipients = addresses(2);
      const { newsletter } = await sendingNewsletter(store, { list: 'news', recipients, now: at(0) });
      const run = await registerTestRun(store, at(0));
      const first = await claim(store, { newsletterId: newsletter.id, runId: run.id, limit: 2, now: at(1) });
      await store.releaseClaims(
        run.id,
        first.claimed.map((c) => c.deliveryId),
        at(2),
      );
      await store.unsubscribe(recipients[0]!, at(3));
      const again = await claim(store, { newsletterId: newsletter.id, runId: run.id, limit: 2, now: at(4) });
      expect(again.claimed.map((c) => c.address)).toEqual([recipients[1]]);
      expect(again.skipped).toBe(1);
      await expectCounts(store, newsletter.id, 2, { claimed: 1, skipped: 1 });
    });
  });

  describe('completion and counts', () => {
    it('completeIfDone only when nobody is pending, claimed or waiting for a retry; counts add up throughout', async () => {
      const recipients = addresses(6);
      const { newsletter } = await sendingNewsletter(store, { list: 'news', recipients, now: at(0) });
      await store.unsubscribe(recipients[5]!, at(0));
      const run = await registerTestRun(store, at(0), { leaseMs: 600_000 });
      const done = () => store.completeIfDone(newsletter.id, at(100_000));

      await expectCounts(store, newsletter.id, 6, { pending: 6 });
      expect(await done()).toBe(false);

      const first = await claim(store, { newsletterId: newsletter.id, runId: run.id, limit: 4, now: at(1) });
      await expectCounts(store, newsletter.id, 6, { pending: 2, claimed: 4 });
      expect(await done()).toBe(false);

      const [a, b, c, d] = first.claimed;
      await store.recordOutcomes(
        run.id,
        [
          sentWrite(a!),
          write(b!.deliveryId, 'failed'),
          write(c!.deliveryId, 'retry', { nextAttemptAt: at(50) }),
          write(d!.deliveryId, 'unknown'),
        ],
        at(2),
      );
      await expectCounts(store, newsletter.id, 6, { pending: 2, sent: 1, failed: 1, retry: 1, unknown: 1 });
      expect(await done()).toBe(false);

      const second = await claim(store, { newsletterId: newsletter.id, runId: run.id, limit: 4, now: at(3) });
      expect(second.claimed.map((x) => x.address)).toEqual([recipients[4]]);
      expect(second.skipped).toBe(1);
      await expectCounts(store, newsletter.id, 6, { pending: 0, claimed: 1, retry: 1, skipped: 1 });
      expect(await done()).toBe(false);

      await store.recordOutcomes(run.id, second.claimed.map(sentWrite), at(4));
      await expectCounts(store, newsletter.id, 6, { pending: 0, claimed: 0, retry: 1 });
      expect(await done()).toBe(false);

      const third = await claim(store, { newsletterId: newsletter.id, runId: run.id, limit: 4, now: at(50) });
      expect(third.claimed.map((x) => x.address)).toEqual([c!.address]);
      expect(await done()).toBe(false);
      await store.recordOutcomes(run.id, [sentWrite(third.claimed[0]!)], at(51));

      await expectCounts(store, newsletter.id, 6, { pending: 0, sent: 3, failed: 1, unknown: 1, skipped: 1 });
      expect(await done()).toBe(true);
      expect(await done()).toBe(false);
      expect(await store.getNewsletter(newsletter.id)).toMatchObject({
        status: 'sent',
        finishedAt: at(100_000),
      });
      await expectCounts(store, newsletter.id, 6, { pending: 0, sent: 3, failed: 1, unknown: 1, skipped: 1 });
    });

    it('a newsletter that was never begun cannot complete', async () => {
      await seedSubscribers(store, 'news', addresses(2), at(0));
      const scheduled = await createScheduledNewsletter(store, ['news'], at(0));
      expect(await store.completeIfDone(scheduled.id, at(1))).toBe(false);
      await expectCounts(store, scheduled.id, 2, { pending: 2 });
    });

    it('an empty audience completes at once', async () => {
      await store.importSubscribers(asyncRows([]), { list: 'empty', fieldNames: [], now: at(0) });
      const newsletter = await createScheduledNewsletter(store, ['empty'], at(0));
      const run = await registerTestRun(store, at(0));
      expect(await store.beginSending(newsletter, fakeBody(), run.id, at(1))).toBe(true);
      expect(
        await claim(store, { newsletterId: newsletter.id, runId: run.id, limit: 5, now: at(2) }),
      ).toMatchObject({
        claimed: [],
        skipped: 0,
        stillSending: true,
      });
      expect(await store.completeIfDone(newsletter.id, at(3))).toBe(true);
      await expectCounts(store, newsletter.id, 0);
    });

    it('the audience is the union of the lists, each address once', async () => {
      await seedSubscribers(store, 'a', ['ann@example.org', 'bob@example.org'], at(0));
      await seedSubscribers(store, 'b', ['Bob@example.org', 'cat@example.org'], at(0));
      const newsletter = await createScheduledNewsletter(store, ['a', 'b'], at(0));
      expect(await store.audienceSize(['a', 'b'])).toBe(3);
      const run = await registerTestRun(store, at(0));
      await store.beginSending(newsletter, fakeBody(), run.id, at(1));
      const result = await claim(store, {
        newsletterId: newsletter.id,
        runId: run.id,
        limit: 10,
        now: at(2),
      });
      expect(result.claimed.map((c) => c.address).sort()).toEqual([
        'ann@example.org',
        'bob@example.org',
        'cat@example.org',
      ]);
      await expectCounts(store, newsletter.id, 3, { claimed: 3, pending: 0 });
    });

    it('nobody is pending exactly when src/domain/audience.ts says the audience is closed, in every status', async () => {
      // PostgreSQL asks this in SQL (audienceClosedSql), SQLite in code: both must agree with the rule.
      const { newsletter } = await sendingNewsletter(store, {
        list: 'news',
        recipients: addresses(2),
        now: at(0),
      });
      const target = { kind: store.kind, location: handle.location };
      for (const status of NEWSLETTER_STATUSES) {
        for (const finishedAt of [null, at(5)]) {
          const set = 'UPDATE newsletters SET status = ?, finished_at = ? WHERE id = ?';
          await damage(target, set, [status, finishedAt, newsletter.id]);
          const closed = audienceClosed({ status, finishedAt });
          const what = `${status}, finished_at ${finishedAt === null ? 'null' : 'set'}`;
          expect((await store.counts(newsletter.id)).pending, what).toBe(closed ? 0 : 2);
          if (status === 'sending')
            expect(await store.completeIfDone(newsletter.id, at(6)), what).toBe(closed);
        }
      }
    });
  });

  describe('reconcile', () => {
    it('resend on a sent newsletter does not mail subscribers who joined its lists after it was sent', async () => {
      const { newsletter, u1 } = await settled();
      await seedSubscribers(store, 'news', ['late@example.org'], at(5));
      await store.reconcile(newsletter.id, 'resend', [u1.address], at(10));
      await expectCounts(store, newsletter.id, 5, {
        sent: 1,
        failed: 1,
        skipped: 1,
        unknown: 1,
        retry: 1,
        pending: 0,
      });
      const run = await registerTestRun(store, at(11));
      const again = await claim(store, {
        newsletterId: newsletter.id,
        runId: run.id,
        limit: 10,
        now: at(11),
      });
      expect(again.claimed.map((c) => c.address)).toEqual([u1.address]);
      await store.recordOutcomes(run.id, again.claimed.map(sentWrite), at(12));
      expect(
        await claim(store, { newsletterId: newsletter.id, runId: run.id, limit: 10, now: at(13) }),
      ).toMatchObject({
        claimed: [],
        skipped: 0,
      });
      expect(await store.completeIfDone(newsletter.id, at(14))).toBe(true);
      await expectCounts(store, newsletter.id, 5, { sent: 2, failed: 1, skipped: 1, unknown: 1, pending: 0 });
    });

    /** A sent newsletter with one row in each final state: sent, failed, skipped, and two unknown. */
    async function settled() {
      const recipients = addresses(5);
      const { newsletter } = await sendingNewsletter(store, { list: 'news', recipients, now: at(0) });
      await store.unsubscribe(recipients[2]!, at(0));
      const run = await registerTestRun(store, at(0));
      const { claimed } = await claim(store, {
        newsletterId: newsletter.id,
        runId: run.id,
        limit: 5,
        now: at(1),
      });
      const [sent, failed, u1, u2] = claimed;
      await store.recordOutcomes(
        run.id,
        [sentWrite(sent!), write(failed!.deliveryId, 'failed'), write(u1!.deliveryId, 'unknown')],
        at(2),
      );
      await store.expireRuns(at(3), [run.id]);
      expect(await store.completeIfDone(newsletter.id, at(4))).toBe(true);
      await expectCounts(store, newsletter.id, 5, { sent: 1, failed: 1, skipped: 1, unknown: 2 });
      return { newsletter, recipients, sent: sent!, failed: failed!, u1: u1!, u2: u2! };
    }

    it('mark-sent settles only unknown rows', async () => {
      const { newsletter, recipients, sent, failed, u1 } = await settled();
      const result = await store.reconcile(
        newsletter.id,
        'mark-sent',
        [sent.address, failed.address, recipients[2]!, u1.address, 'stranger@example.org'],
        at(10),
      );
      expect(result.changed).toBe(1);
      expect(result.notUnknown.sort()).toEqual(
        [sent.address, failed.address, recipients[2]!, 'stranger@example.org'].sort(),
      );
      await expectCounts(store, newsletter.id, 5, { sent: 2, failed: 1, skipped: 1, unknown: 1 });
      expect(await stateOf(store, newsletter.id, sent.deliveryId)).toMatchObject({
        state: 'sent',
        queueId: 'TEST',
      });
      expect((await store.getNewsletter(newsletter.id))?.status).toBe('sent');

      // Without addresses: every unknown row.
      expect(await store.reconcile(newsletter.id, 'mark-sent', null, at(11))).toEqual(
        reconciled({ changed: 1 }),
      );
      await expectCounts(store, newsletter.id, 5, { sent: 3, unknown: 0 });
    });

    it('resend only touches unknown rows, and moves a sent newsletter back to sending', async () => {
      const { newsletter, sent, failed, u1, u2 } = await settled();
      const refused = await store.reconcile(newsletter.id, 'resend', [sent.address, failed.address], at(10));
      expect(refused).toEqual(reconciled({ notUnknown: [sent.address, failed.address] }));
      expect((await store.getNewsletter(newsletter.id))?.status).toBe('sent');

      expect(await store.reconcile(newsletter.id, 'resend', [u1.address], at(11))).toEqual(
        reconciled({ changed: 1 }),
      );
      // finished_at stays set: the audience is closed, only the resent rows go out again.
      expect(await store.getNewsletter(newsletter.id)).toMatchObject({
        status: 'sending',
        finishedAt: at(4),
      });
      expect(await stateOf(store, newsletter.id, u1.deliveryId)).toMatchObject({
        state: 'retry',
        nextAttemptAt: at(11),
      });
      await expectCounts(store, newsletter.id, 5, {
        sent: 1,
        failed: 1,
        skipped: 1,
        unknown: 1,
        retry: 1,
        pending: 0,
      });

      // The next run sends the resent row, and only that one; the other unknown stays held.
      const run = await registerTestRun(store, at(12));
      const again = await claim(store, {
        newsletterId: newsletter.id,
        runId: run.id,
        limit: 10,
        now: at(12),
      });
      expect(again.claimed.map((c) => c.address)).toEqual([u1.address]);
      expect(again.skipped).toBe(0);
      await store.recordOutcomes(run.id, again.claimed.map(sentWrite), at(13));
      expect(await store.completeIfDone(newsletter.id, at(14))).toBe(true);
      await expectCounts(store, newsletter.id, 5, { sent: 2, failed: 1, skipped: 1, unknown: 1 });
      expect(
        (await store.deliveries(newsletter.id, { state: 'unknown', limit: 10 })).map((d) => d.address),
      ).toEqual([u2.address]);
    });
  });

  describe('reconcile: states older versions left behind', () => {
    // Built with SQL past the Store (test/helpers/damage.ts): the current code never leaves them.
    const target = () => ({ kind: store.kind, location: handle.location });

    /**
     * Six recipients. Run `closed` claimed five, recorded one sent and one unknown, and was closed
     * with three rows still `claimed`: stranded. A live run holds the sixth.
     */
    async function stranded() {
      const recipients = addresses(6);
      const { newsletter } = await sendingNewsletter(store, { list: 'news', recipients, now: at(0) });
      const closed = await registerTestRun(store, at(0));
      const first = await claim(store, {
        newsletterId: newsletter.id,
        runId: closed.id,
        limit: 5,
        now: at(1),
      });
      const [sent, unknown, ...rows] = first.claimed;
      await store.recordOutcomes(closed.id, [sentWrite(sent!), write(unknown!.deliveryId, 'unknown')], at(2));
      expect(await store.strandedClaims()).toEqual([]);
      expect(await closeRunLeavingClaims(target(), closed.id, at(3))).toBe(1);
      const live = await registerTestRun(store, at(4));
      const second = await claim(store, {
        newsletterId: newsletter.id,
        runId: live.id,
        limit: 5,
        now: at(4),
      });
      expect(second.claimed).toHaveLength(1);
      await expectCounts(store, newsletter.id, 6, { sent: 1, unknown: 1, claimed: 4, pending: 0 });
      return { newsletter, live, unknown: unknown!, stranded: rows, held: second.claimed[0]! };
    }

    it('strandedClaims counts rows claimed by a closed or missing run, never those of a live run', async () => {
      const { newsletter, held } = await stranded();
      expect(await store.strandedClaims()).toEqual([{ newsletterId: newsletter.id, count: 3 }]);
      // A row that lost its run altogether is stranded too.
      await damage(target(), 'UPDATE deliveries SET run_id = NULL WHERE id = ?', [held.deliveryId]);
      expect(await store.strandedClaims()).toEqual([{ newsletterId: newsletter.id, count: 4 }]);
    });

    it('mark-sent settles stranded rows as it does unknown ones, and never touches a row a live run holds', async () => {
      const { newsletter, live, stranded: rows, held } = await stranded();
      const [first] = rows;
      expect(
        await store.reconcile(newsletter.id, 'mark-sent', [first!.address, held.address], at(10)),
      ).toEqual(
        reconciled({ changed: 1, stranded: 1, notUnknown: [held.address], claimedByLiveRun: [held.address] }),
      );
      expect(await stateOf(store, newsletter.id, first!.deliveryId)).toMatchObject({ state: 'sent' });
      expect(await stateOf(store, newsletter.id, held.deliveryId)).toMatchObject({
        state: 'claimed',
        runId: live.id,
      });
      // The live run still holds its claim: its own write lands.
      expect(await store.recordOutcomes(live.id, [sentWrite(held)], at(11))).toMatchObject({ applied: 1 });

      // Without addresses: every unknown and stranded row.
      expect(await store.reconcile(newsletter.id, 'mark-sent', null, at(12))).toEqual(
        reconciled({ changed: 3, stranded: 2 }),
      );
      await expectCounts(store, newsletter.id, 6, { sent: 6, unknown: 0, claimed: 0 });
      expect(await store.strandedClaims()).toEqual([]);
      expect(await store.completeIfDone(newsletter.id, at(13))).toBe(true);
    });

    it('resend makes stranded rows due again, same Message-ID; the next claim sends them and the newsletter completes', async () => {
      const { newsletter, live, stranded: rows, held } = await stranded();
      await store.recordOutcomes(live.id, [sentWrite(held)], at(5));
      // Stranded rows keep the newsletter open: nothing is left to claim, yet it cannot complete.
      expect(await store.completeIfDone(newsletter.id, at(6))).toBe(false);

      const asked = rows.map((row) => row.address);
      expect(await store.reconcile(newsletter.id, 'resend', asked, at(10))).toEqual(
        reconciled({ changed: 3, stranded: 3 }),
      );
      for (const row of rows) {
        expect(await stateOf(store, newsletter.id, row.deliveryId)).toMatchObject({
          state: 'retry',
          nextAttemptAt: at(10),
          messageId: row.messageId,
        });
      }
      const again = await claim(store, {
        newsletterId: newsletter.id,
        runId: live.id,
        limit: 10,
        now: at(11),
      });
      expect(again.claimed.map((c) => c.address).sort()).toEqual([...asked].sort());
      expect(again.claimed.map((c) => c.messageId).sort()).toEqual(rows.map((r) => r.messageId).sort());
      await store.recordOutcomes(live.id, again.claimed.map(sentWrite), at(12));
      expect(await store.completeIfDone(newsletter.id, at(13))).toBe(true);
      await expectCounts(store, newsletter.id, 6, { sent: 5, unknown: 1 });
    });

    it('on a cancelled newsletter resend is refused, mark-sent settles, and either writes the retry rows skipped (cancelled)', async () => {
      const { newsletter, live, unknown, stranded: rows, held } = await stranded();
      const [s1, s2, s3] = rows as [ClaimedDelivery, ClaimedDelivery, ClaimedDelivery];
      await store.recordOutcomes(live.id, [sentWrite(held)], at(5));
      expect(await store.cancelNewsletter(newsletter.id, at(6))).toEqual({ ok: true });
      // A batch in flight during the cancel, under an older version, wrote two retries.
      expect(await forceRetry(target(), [s2.deliveryId, s3.deliveryId], at(7))).toBe(2);
      await expectCounts(store, newsletter.id, 6, { sent: 2, unknown: 1, claimed: 1, retry: 2 });

      // Refused, and refused changes nothing.
      expect(await store.reconcile(newsletter.id, 'resend', null, at(10))).toEqual(
        reconciled({ refused: 'cancelled' }),
      );
      for (const row of [s2, s3])
        expect(await stateOf(store, newsletter.id, row.deliveryId)).toMatchObject({ state: 'retry' });
      expect(await stateOf(store, newsletter.id, s1.deliveryId)).toMatchObject({ state: 'claimed' });
      expect(await stateOf(store, newsletter.id, unknown.deliveryId)).toMatchObject({ state: 'unknown' });
      // Named, they are held by the refusal, not reported as "not unknown".
      expect(await store.reconcile(newsletter.id, 'resend', [unknown.address, s1.address], at(11))).toEqual(
        reconciled({ refused: 'cancelled' }),
      );

      expect(
        await store.reconcile(newsletter.id, 'mark-sent', [unknown.address, s3.address], at(13)),
      ).toEqual(reconciled({ changed: 1, cancelledRetries: 2 }));
      for (const row of [s2, s3]) {
        expect(await stateOf(store, newsletter.id, row.deliveryId)).toMatchObject({
          state: 'skipped',
          reason: 'cancelled',
          nextAttemptAt: null,
        });
      }
      expect(await store.reconcile(newsletter.id, 'mark-sent', null, at(14))).toEqual(
        reconciled({ changed: 1, stranded: 1 }),
      );
      await expectCounts(store, newsletter.id, 6, { sent: 4, skipped: 2, unknown: 0, claimed: 0, retry: 0 });
      expect((await store.getNewsletter(newsletter.id))?.status).toBe('cancelled');
      expect(await store.strandedClaims()).toEqual([]);
    });
  });

  describe('suppressions and bounces', () => {
    const bounce = (dsnId: string, address: string, kind: 'hard' | 'soft', status: string) => ({
      dsnId,
      address,
      kind,
      status,
      reason: `${status} test diagnostic`,
    });

    it('suppressMany adds each address once, keeps the first reason, and claims skip them', async () => {
      const recipients = addresses(4);
      await store.suppress(recipients[0]!, '550 5.1.1 earlier', 'smtp', at(0));
      const result = await store.suppressMany(
        [
          { address: recipients[0]!, reason: 'from a file' },
          { address: recipients[1]!, reason: 'from a file' },
          { address: recipients[1]!, reason: 'twice in the file' },
          { address: 'not-a-subscriber@example.org', reason: 'from a file' },
        ],
        'import',
        at(1),
      );
      expect(result).toEqual({ added: 2 });
      expect(await store.listSuppressions({ afterAddress: null, limit: 10 })).toEqual([
        {
          address: 'not-a-subscriber@example.org',
          reason: 'from a file',
          source: 'import',
          createdAt: at(1),
          reportId: null,
        },
        {
          address: recipients[0]!,
          reason: '550 5.1.1 earlier',
          source: 'smtp',
          createdAt: at(0),
          reportId: null,
        },
        {
          address: recipients[1]!,
          reason: 'from a file',
          source: 'import',
          createdAt: at(1),
          reportId: null,
        },
      ]);

      const { newsletter } = await sendingNewsletter(store, { list: 'news', recipients, now: at(2) });
      const run = await registerTestRun(store, at(3));
      const claimed = await claim(store, {
        newsletterId: newsletter.id,
        runId: run.id,
        limit: 10,
        now: at(3),
      });
      expect(claimed.claimed.map((c) => c.address)).toEqual(recipients.slice(2));
      expect(claimed.skipped).toBe(2);
    });

    it('listSuppressions pages in byte order of the address', async () => {
      const all = [
        'b@example.org',
        'a@example.org',
        'A-upper@example.org',
        'c@example.org',
        '_x@example.org',
      ];
      await store.suppressMany(
        all.map((address) => ({ address, reason: 'r' })),
        'operator',
        at(0),
      );
      const seen: string[] = [];
      let after: string | null = null;
      for (let page = 0; page < 10; page++) {
        const rows = await store.listSuppressions({ afterAddress: after, limit: 2 });
        if (rows.length === 0) break;
        seen.push(...rows.map((r) => r.address));
        after = rows.at(-1)!.address;
      }
      expect(seen).toEqual([...all].sort((x, y) => (Buffer.from(x) < Buffer.from(y) ? -1 : 1)));
    });

    it('unsuppress lifts a suppression once; the next newsletter mails the address again', async () => {
      const recipients = addresses(2);
      await store.suppress(recipients[0]!, 'operator said so', 'operator', at(0));
      expect(await store.unsuppress(recipients[0]!, at(1))).toBe(true);
      expect(await store.unsuppress(recipients[0]!, at(2))).toBe(false);
      expect(await store.unsuppress('never@example.org', at(2))).toBe(false);
      expect(await store.listSuppressions({ afterAddress: null, limit: 10 })).toEqual([]);

      const { newsletter } = await sendingNewsletter(store, { list: 'news', recipients, now: at(3) });
      const run = await registerTestRun(store, at(4));
      const claimed = await claim(store, {
        newsletterId: newsletter.id,
        runId: run.id,
        limit: 10,
        now: at(4),
      });
      expect(claimed.claimed.map((c) => c.address)).toEqual(recipients);
    });

    it('a hard bounce suppresses at once; the same DSN again changes nothing', async () => {
      const address = 'gone@example.org';
      const event = bounce('<dsn-1@mx.example.net>', address, 'hard', '5.1.1');
      expect(await store.recordBounce(event, { softLimit: 3, now: at(0) })).toEqual({
        recorded: true,
        suppressed: true,
        softCount: 0,
      });
      expect(await store.recordBounce(event, { softLimit: 3, now: at(1) })).toEqual({
        recorded: false,
        suppressed: false,
        softCount: 0,
      });
      const [row] = await store.listSuppressions({ afterAddress: null, limit: 10 });
      expect(row).toEqual({
        address,
        reason: 'hard bounce 5.1.1: 5.1.1 test diagnostic',
        source: 'bounce',
        createdAt: at(0),
        // recordBounce is the unauthenticated record of before issue 18: no report kept.
        reportId: null,
      });
      // Another recipient of the same DSN is its own event.
      expect(
        (
          await store.recordBounce(bounce('<dsn-1@mx.example.net>', 'other@example.org', 'hard', '5.2.1'), {
            softLimit: 3,
            now: at(2),
          })
        ).recorded,
      ).toBe(true);
    });

    it('soft bounces count per address and suppress at the limit; re-recording one does not count twice', async () => {
      const address = 'full@example.org';
      const limit = { softLimit: 3 };
      const soft = (n: number) => bounce(`<soft-${n}@mx.example.net>`, address, 'soft', '4.2.2');
      expect(await store.recordBounce(soft(1), { ...limit, now: at(1) })).toMatchObject({ softCount: 1 });
      expect(await store.recordBounce(soft(1), { ...limit, now: at(2) })).toMatchObject({ recorded: false });
      expect(await store.recordBounce(soft(2), { ...limit, now: at(3) })).toEqual({
        recorded: true,
        suppressed: false,
        softCount: 2,
      });
      // Another address's soft bounces do not add up with these.
      await store.recordBounce(bounce('<soft-x@mx.example.net>', 'else@example.org', 'soft', '4.4.1'), {
        ...limit,
        now: at(4),
      });
      expect(await store.listSuppressions({ afterAddress: null, limit: 10 })).toEqual([]);
      expect(await store.recordBounce(soft(3), { ...limit, now: at(5) })).toEqual({
        recorded: true,
        suppressed: true,
        softCount: 3,
      });
      expect(await store.listSuppressions({ afterAddress: null, limit: 10 })).toEqual([
        {
          address,
          reason: '3 soft bounces, the last 4.2.2: 4.2.2 test diagnostic',
          source: 'bounce',
          createdAt: at(5),
          reportId: null,
        },
      ]);

      // Lifted by an operator: the old soft bounces stop counting, and are still known.
      expect(await store.unsuppress(address, at(6))).toBe(true);
      expect(await store.recordBounce(soft(3), { ...limit, now: at(7) })).toMatchObject({ recorded: false });
      expect(await store.recordBounce(soft(4), { ...limit, now: at(8) })).toEqual({
        recorded: true,
        suppressed: false,
        softCount: 1,
      });
    });

    it('concurrent soft bounces of one address from two connections still reach the limit', async () => {
      const other = await handle.connect();
      const address = 'busy@example.org';
      const results = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          (i % 2 === 0 ? store : other).recordBounce(bounce(`<race-${i}@mx>`, address, 'soft', '4.2.1'), {
            softLimit: 6,
            now: at(i),
          }),
        ),
      );
      expect(results.map((r) => r.softCount).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6]);
      expect(results.filter((r) => r.suppressed)).toHaveLength(1);
      expect((await store.listSuppressions({ afterAddress: null, limit: 10 })).map((s) => s.address)).toEqual(
        [address],
      );
    });
  });

  describe('hourly quota', () => {
    const HOUR = 3_600_000;
    const window = Math.floor(T0 / HOUR) * HOUR;

    it('reserveQuota grants what is wanted until the limit, then only what is left, then nothing', async () => {
      expect(await store.quotaUsed('acct', window)).toBe(0);
      expect(await store.reserveQuota('acct', window, 20, 50, at(0))).toBe(20);
      expect(await store.reserveQuota('acct', window, 20, 50, at(1))).toBe(20);
      expect(await store.reserveQuota('acct', window, 20, 50, at(2))).toBe(10);
      expect(await store.reserveQuota('acct', window, 20, 50, at(3))).toBe(0);
      expect(await store.quotaUsed('acct', window)).toBe(50);
      // A limit lowered below what the hour used grants nothing and takes nothing back.
      expect(await store.reserveQuota('acct', window, 5, 40, at(4))).toBe(0);
      expect(await store.quotaUsed('acct', window)).toBe(50);
    });

    it('counts each account and each hour apart', async () => {
      expect(await store.reserveQuota('acct', window, 10, 10, at(0))).toBe(10);
      expect(await store.reserveQuota('acct', window, 1, 10, at(1))).toBe(0);
      expect(await store.reserveQuota('other', window, 4, 10, at(2))).toBe(4);
      expect(await store.reserveQuota('acct', window + HOUR, 7, 10, at(HOUR))).toBe(7);
      expect(await store.quotaUsed('acct', window)).toBe(10);
      expect(await store.quotaUsed('other', window)).toBe(4);
      expect(await store.quotaUsed('acct', window + HOUR)).toBe(7);
      expect(await store.quotaUsed('acct', window - HOUR)).toBe(0);
    });

    it('releaseQuota gives back what was not claimed, never below zero', async () => {
      expect(await store.reserveQuota('acct', window, 20, 30, at(0))).toBe(20);
      expect(await store.reserveQuota('acct', window, 20, 30, at(1))).toBe(10);
      await store.releaseQuota('acct', window, 8, at(2));
      expect(await store.quotaUsed('acct', window)).toBe(22);
      expect(await store.reserveQuota('acct', window, 20, 30, at(3))).toBe(8);
      await store.releaseQuota('acct', window, 0, at(4));
      await store.releaseQuota('acct', window, 500, at(5));
      expect(await store.quotaUsed('acct', window)).toBe(0);
      // Giving back to an hour nobody reserved in changes nothing and creates nothing.
      await store.releaseQuota('acct', window + HOUR, 3, at(6));
      expect(await store.quotaUsed('acct', window + HOUR)).toBe(0);
      expect(await store.reserveQuota('acct', window, 50, 30, at(7))).toBe(30);
    });

    it('separate connections reserving and giving back at once never hold more than the limit', async () => {
      const limit = 120;
      const connections = [store, ...(await Promise.all(Array.from({ length: 5 }, () => handle.connect())))];
      const reports = await Promise.all(
        connections.map(async (connection, index) => {
          let granted = 0;
          let released = 0;
          for (let turn = 0; ; turn++) {
            stopRunaway(turn, 1000);
            const got = await connection.reserveQuota(
              'acct',
              window,
              1 + ((turn + index) % 9),
              limit,
              Date.now(),
            );
            if (got === 0) break;
            granted += got;
            // Some claims come back short: give one back now and then, while the others reserve.
            if (turn % 3 === 0 && got > 1) {
              await connection.releaseQuota('acct', window, 1, Date.now());
              released += 1;
            }
          }
          return { granted, released };
        }),
      );
      const held = reports.reduce((sum, r) => sum + r.granted - r.released, 0);
      expect(held).toBeLessThanOrEqual(limit);
      expect(await store.quotaUsed('acct', window)).toBe(held);
      // What a late give-back left free is still there, exactly.
      expect(await store.reserveQuota('acct', window, limit, limit, Date.now())).toBe(limit - held);
      expect(await store.quotaUsed('acct', window)).toBe(limit);
    });

    it('separate processes reserving at once never get more than the limit between them', async () => {
      const built = await builtQuotaStore(factory.name);
      const limit = 300;
      const processes = 6;
      let reports: QuotaReport[];
      if (built) {
        const started = Array.from({ length: processes }, (_, index) =>
          startQuotaProcess(built, factory.name, handle.location, {
            account: 'acct',
            windowStart: window,
            limit,
            first: index,
          }),
        );
        try {
          for (const { lines } of started) expect(await nextLine(lines, 'ready')).toBe('ready');
          for (const { child } of started) child.stdin!.write('go\n');
          for (const { lines } of started) expect(await nextLine(lines, 'first')).toBe('first');
          for (const { child } of started) child.stdin!.write('on\n');
          reports = await Promise.all(
            started.map(async ({ lines }) => JSON.parse(await nextLine(lines, 'its report')) as QuotaReport),
          );
        } finally {
          for (const { child } of started) child.kill('SIGKILL');
        }
      } else {
        console.warn(
          `dist/ has no ${factory.name} store with reserveQuota: racing connections in this process instead (run \`npm run build\`)`,
        );
        const connections = await Promise.all(Array.from({ length: processes }, () => handle.connect()));
        reports = await Promise.all(
          connections.map(async (connection, index) => {
            let granted = 0;
            let calls = 0;
            for (;;) {
              stopRunaway(calls, 1000);
              const got = await connection.reserveQuota(
                'acct',
                window,
                1 + ((calls + index) % 7),
                limit,
                Date.now(),
              );
              calls += 1;
              if (got === 0) break;
              granted += got;
            }
            return { granted, calls };
          }),
        );
      }
      // Each stopped only when nothing was left, so together they took exactly the limit: not
      // one more (the reservation is atomic), not one less (nothing was lost).
      expect(reports.reduce((sum, r) => sum + r.granted, 0)).toBe(limit);
      if (built) expect(reports.every((r) => r.granted > 0)).toBe(true);
      expect(await store.quotaUsed('acct', window)).toBe(limit);
      expect(await store.reserveQuota('acct', window, 1, limit, Date.now())).toBe(0);
    });
  });
});

// ---- real processes racing on one SQLite file --------------------------------------------------

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BUILT_STORE = join(ROOT, 'dist/store/sqlite/sqlite-store.js');

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** dist/ as the child processes need it: built when missing or older than the store's sources. */
async function ensureBuiltStore(): Promise<string | null> {
  // Never rebuild here: other test files are running the built CLI from dist/ at the same time.
  // `npm test` builds before it runs vitest.
  const sources = Math.max(newestSource(join(ROOT, 'src/store')), newestSource(join(ROOT, 'src/domain')));
  if (existsSync(BUILT_STORE) && statSync(BUILT_STORE).mtimeMs < sources) {
    console.warn('dist/ is older than src/: run `npm run build` (npm test does) to race the current store');
  }
  if (!existsSync(BUILT_STORE)) return null;
  const probe = await promisify(execFile)(
    process.execPath,
    ['--input-type=module', '-e', `await import(${JSON.stringify(pathToFileURL(BUILT_STORE).href)});`],
    { cwd: ROOT },
  ).then(
    () => true,
    () => false,
  );
  return probe ? BUILT_STORE : null;
}

/**
 * One claimer process: registers a run, says `ready`, waits for `go` on stdin (so that all start
 * together, without sleeping), then claims and records until nothing is left, and prints what it
 * claimed as one JSON line.
 */
const CLAIMER = `
const { SqliteStore } = await import(process.argv[1]);
const { file, newsletterId, limit, busyTimeoutMs } = JSON.parse(process.argv[2]);
const store = SqliteStore.open(file, { create: false, readonly: false, busyTimeoutMs });
const run = await store.registerRun({ hostId: 'child', hostname: 'child', pid: process.pid, now: Date.now(), leaseMs: 600000 });
process.stdout.write('ready\\n');
await new Promise((resolve) => process.stdin.once('data', resolve));
const claimed = [];
let after = 0;
let batches = 0;
for (;;) {
  if (batches > 1000) throw new Error('still claiming after 1000 batches: the same rows come back');
  const result = await store.claimBatch({
    newsletterId, runId: run.id, limit: 1 + (batches % limit), now: Date.now(), afterSubscriberId: after,
    messageIds: { secret: 'child', fromDomain: 'example.org' },
  });
  batches += 1;
  if (result.claimed.length === 0 && result.skipped === 0) break;
  after = result.lastSubscriberId;
  for (const row of result.claimed) claimed.push(row.address);
  if (batches === 1) {
    // Hold after the first claim until every claimer has made one: each then provably got work,
    // however the scheduler ordered the processes, and they race for the rest.
    process.stdout.write('first\\n');
    await new Promise((resolve) => process.stdin.once('data', resolve));
  }
  await store.recordOutcomes(run.id, result.claimed.map((row) => ({
    deliveryId: row.deliveryId, state: 'sent', attempts: row.attempts + 1, nextAttemptAt: null,
    smtpReply: '250 ok', queueId: null, suppressAddress: null,
  })), Date.now());
}
await store.endRun(run.id, { outcome: 'ok', counts: { sent: claimed.length, failed: 0, retry: 0, unknown: 0, skipped: 0 }, error: null, outcomes: [], handedOver: [] }, Date.now());
await store.close();
process.stdout.write(JSON.stringify({ runId: run.id, batches, claimed }) + '\\n');
process.stdin.destroy();
`;

interface ClaimerReport {
  runId: number;
  batches: number;
  claimed: string[];
}

const claimerProcesses = new Set<ChildProcess>();

function startClaimer(
  builtStore: string,
  options: object,
): { child: ChildProcess; lines: AsyncIterator<string> } {
  const child = spawn(
    process.execPath,
    ['--input-type=module', '-e', CLAIMER, pathToFileURL(builtStore).href, JSON.stringify(options)],
    { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] },
  );
  claimerProcesses.add(child);
  child.once('exit', () => claimerProcesses.delete(child));
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  return { child, lines };
}

async function nextLine(lines: AsyncIterator<string>, what: string): Promise<string> {
  const next = await lines.next();
  if (next.done) throw new Error(`a claimer process ended before printing ${what}`);
  return next.value;
}

/** The same race inside this process, one connection per claimer (the fallback when dist is unusable). */
async function claimInProcess(
  handle: StoreHandle,
  newsletterId: number,
  claimers: number,
): Promise<ClaimerReport[]> {
  const connections = await Promise.all(Array.from({ length: claimers }, () => handle.connect()));
  return Promise.all(
    connections.map(async (store, index) => {
      const run = await registerTestRun(store, Date.now());
      const claimed: string[] = [];
      let after = 0;
      let batches = 0;
      for (;;) {
        stopRunaway(batches, 1000);
        const result = await claim(store, {
          newsletterId,
          runId: run.id,
          limit: 1 + ((batches + index) % 7),
          now: Date.now(),
          afterSubscriberId: after,
        });
        batches += 1;
        if (result.claimed.length === 0 && result.skipped === 0) break;
        after = result.lastSubscriberId;
        claimed.push(...result.claimed.map((c) => c.address));
        await store.recordOutcomes(run.id, result.claimed.map(sentWrite), Date.now());
      }
      return { runId: run.id, batches, claimed };
    }),
  );
}

describe.each(makeStoreFactories().filter((factory) => factory.name === 'sqlite'))(
  'Store contract: $name, separate processes racing',
  (factory) => {
    let builtStore: string | null = null;

    beforeAll(async () => {
      builtStore = await ensureBuiltStore();
    }, 180_000);

    afterAll(() => {
      for (const child of claimerProcesses) child.kill('SIGKILL');
    });

    it('claim the same newsletter until nothing is left: every address exactly once', async () => {
      const handle = await factory.open();
      try {
        const recipients = addresses(600);
        const { newsletter } = await sendingNewsletter(handle.store, {
          list: 'news',
          recipients,
          now: Date.now(),
        });
        const claimers = 4;
        let reports: ClaimerReport[];
        if (builtStore) {
          const started = Array.from({ length: claimers }, () =>
            startClaimer(builtStore!, {
              file: handle.location,
              newsletterId: newsletter.id,
              limit: 7,
              busyTimeoutMs: BUSY_TIMEOUT_MS,
            }),
          );
          for (const { lines } of started) expect(await nextLine(lines, 'ready')).toBe('ready');
          for (const { child } of started) child.stdin!.write('go\n');
          for (const { lines } of started) expect(await nextLine(lines, 'first')).toBe('first');
          for (const { child } of started) child.stdin!.write('on\n');
          reports = await Promise.all(
            started.map(
              async ({ lines }) => JSON.parse(await nextLine(lines, 'its report')) as ClaimerReport,
            ),
          );
        } else {
          console.warn(
            'dist/store/sqlite/sqlite-store.js is not usable: racing connections in this process instead',
          );
          reports = await claimInProcess(handle, newsletter.id, claimers);
        }

        const all = reports.flatMap((r) => r.claimed);
        const once = new Set(all);
        expect(all.length).toBe(recipients.length);
        expect(once.size).toBe(recipients.length);
        expect([...once].sort()).toEqual(recipients);
        expect(new Set(reports.map((r) => r.runId)).size).toBe(claimers);
        // They did race: more than one of them got work.
        expect(reports.filter((r) => r.claimed.length > 0).length).toBeGreaterThan(1);

        const rows = await handle.store.deliveries(newsletter.id, { limit: 10_000 });
        expect(rows).toHaveLength(recipients.length);
        const owner = new Map(
          reports.flatMap((r) => r.claimed.map((address) => [address, r.runId] as const)),
        );
        for (const row of rows) {
          expect(row.state).toBe('sent');
          expect(row.runId).toBe(owner.get(row.address));
        }
        await expectCounts(handle.store, newsletter.id, recipients.length, {
          pending: 0,
          sent: recipients.length,
        });
        expect(await handle.store.completeIfDone(newsletter.id, Date.now())).toBe(true);
      } finally {
        for (const child of claimerProcesses) child.kill('SIGKILL');
        await handle.cleanup();
      }
    });
  },
);

// ---- real processes reserving from one quota (SQLite file or PostgreSQL database) --------------

interface QuotaReport {
  granted: number;
  calls: number;
}

/**
 * One reserving process: opens the built store, says `ready`, waits for `go` (so that all start
 * together, without sleeping), reserves 1–7 at a time until nothing is granted (pausing after its
 * first grant until all have one), and prints what it got as one JSON line.
 */
const QUOTA_RESERVER = `
const [moduleUrl, kind, location, json] = process.argv.slice(1);
const { account, windowStart, limit, first, busyTimeoutMs } = JSON.parse(json);
const built = await import(moduleUrl);
const store = kind === 'sqlite'
  ? built.SqliteStore.open(location, { create: false, readonly: false, busyTimeoutMs })
  : await built.PostgresStore.open(location, { readonly: false });
process.stdout.write('ready\\n');
await new Promise((resolve) => process.stdin.once('data', resolve));
let granted = 0;
let calls = 0;
for (;;) {
  if (calls > 1000) throw new Error('still reserving after 1000 calls');
  const got = await store.reserveQuota(account, windowStart, 1 + ((calls + first) % 7), limit, Date.now());
  calls += 1;
  if (got === 0) break;
  granted += got;
  if (calls === 1) {
    // Hold after the first grant until every process has one: each provably took part, however
    // the scheduler ordered them, and they race for the rest.
    process.stdout.write('first\\n');
    await new Promise((resolve) => process.stdin.once('data', resolve));
  }
}
await store.close();
process.stdout.write(JSON.stringify({ granted, calls }) + '\\n');
process.stdin.destroy();
`;

/** The built store module of `kind`, if dist/ has one that knows the quota; else null. */
async function builtQuotaStore(kind: Store['kind']): Promise<string | null> {
  const file = join(
    ROOT,
    kind === 'sqlite' ? 'dist/store/sqlite/sqlite-store.js' : 'dist/store/postgres/postgres-store.js',
  );
  if (!existsSync(file)) return null;
  const className = kind === 'sqlite' ? 'SqliteStore' : 'PostgresStore';
  const probe = `const m = await import(${JSON.stringify(pathToFileURL(file).href)});
    if (typeof m.${className}.prototype.reserveQuota !== 'function') process.exit(1);`;
  return promisify(execFile)(process.execPath, ['--input-type=module', '-e', probe], { cwd: ROOT }).then(
    () => file,
    () => null,
  );
}

function startQuotaProcess(
  builtStore: string,
  kind: Store['kind'],
  location: string,
  options: { account: string; windowStart: number; limit: number; first: number },
): { child: ChildProcess; lines: AsyncIterator<string> } {
  const child = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      QUOTA_RESERVER,
      pathToFileURL(builtStore).href,
      kind,
      location,
      JSON.stringify({ ...options, busyTimeoutMs: BUSY_TIMEOUT_MS }),
    ],
    { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  return { child, lines };
}
