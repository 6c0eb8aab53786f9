/**
 * The Store contract for segments (issue 14, src/domain/segment.ts): a newsletter with a segment
 * claims only the subscribers inside it, every count adds up to the segment's audience (someone
 * outside it has no ledger row and is not pending), and it completes when the segment is done.
 * Also the dry run's reads (audienceSize, pendingRecipients) and the audience check's numbers
 * (fieldGaps). Loaded by store-contract.test.ts inside its loop over the stores, so it runs
 * against SQLite there and against PostgreSQL in postgres-contract.test.ts.
 */
import { expect, it } from 'vitest';
import type { Segment } from '../../src/domain/segment.js';
import type { DeliveryCounts, Millis } from '../../src/domain/types.js';
import type { Store } from '../../src/store/store.js';
import type { StoreHandle } from '../helpers/store-fixtures.js';
import {
  claim,
  fakeBody,
  registerTestRun,
  seedSubscribers,
  sentWrite,
  subscriber,
} from '../helpers/store-fixtures.js';

const T0: Millis = Date.now();
const at = (offsetMs: number): Millis => T0 + offsetMs;

const STATES = ['claimed', 'sent', 'failed', 'retry', 'unknown', 'skipped'] as const;

/** Paris and not on the free plan, and not staff. */
const PARIS_PAYING: Segment = {
  where: [
    { field: 'city', op: '=', value: 'Paris' },
    { field: 'plan', op: '!=', value: 'free' },
  ],
  excludeLists: ['staff'],
};

/**
 * readers: ann (Paris, pro), bob (Paris, free), cy (no city), dee (Lyon), eve (Paris, pro,
 * suppressed), fay (Paris, pro, also staff), gil (Paris, plan "o'brien; --", no name).
 * In PARIS_PAYING: ann, eve (written skipped), gil. Outside it: bob, cy, dee, fay.
 */
async function seedReaders(store: Store): Promise<void> {
  await seedSubscribers(
    store,
    'readers',
    [
      subscriber('ann@example.org', 'Ann', { city: 'Paris', plan: 'pro' }),
      subscriber('bob@example.org', 'Bob', { city: 'Paris', plan: 'free' }),
      subscriber('cy@example.org', 'Cy', { plan: 'pro' }),
      subscriber('dee@example.org', 'Dee', { city: 'Lyon', plan: 'pro' }),
      subscriber('eve@example.org', 'Eve', { city: 'Paris', plan: 'pro' }),
      subscriber('fay@example.org', 'Fay', { city: 'Paris', plan: 'pro' }),
      subscriber('gil@example.org', '', { city: 'Paris', plan: "o'brien; --" }),
    ],
    at(0),
  );
  await seedSubscribers(
    store,
    'staff',
    [
      subscriber('fay@example.org', 'Fay', { city: 'Paris', plan: 'pro' }),
      subscriber('zed@example.org', 'Zed'),
    ],
    at(0),
  );
  await store.suppress('eve@example.org', 'test', 'operator', at(0));
}

function expectAddsUp(counts: DeliveryCounts, audience: number): void {
  expect(counts.pending + STATES.reduce((sum, state) => sum + counts[state], 0)).toBe(counts.audience);
  expect(counts.audience).toBe(audience);
}

export function segmentContract(current: () => { store: Store; handle: StoreHandle }): void {
  it('claims only the segment, writes no row for anyone outside it, and the counts add up to it', async () => {
    const { store } = current();
    await seedReaders(store);
    const created = await store.createNewsletter(
      {
        subject: 'Hello {{name}}',
        templatePath: 'hello.mjml',
        from: null,
        lists: ['readers'],
        scheduledAt: at(-60_000),
        segment: PARIS_PAYING,
      },
      at(0),
    );
    expect(created.segment).toEqual(PARIS_PAYING);
    expect((await store.getNewsletter(created.id))?.segment).toEqual(PARIS_PAYING);
    // Before anyone is claimed: the segment is the audience, all pending.
    expectAddsUp(await store.counts(created.id), 3);
    expect(await store.audienceSize(['readers'], PARIS_PAYING)).toBe(3);
    expect(await store.audienceSize(['readers'])).toBe(7);

    const run = await registerTestRun(store, at(1));
    expect(await store.beginSending(created, fakeBody({ compiledAt: at(1) }), run.id, at(1))).toBe(true);
    const first = await claim(store, { newsletterId: created.id, runId: run.id, limit: 100, now: at(2) });
    expect(first.claimed.map((d) => d.address).sort()).toEqual(['ann@example.org', 'gil@example.org']);
    expect(first.skipped).toBe(1); // eve, suppressed: in the segment, so in the ledger
    const after = await store.counts(created.id);
    expectAddsUp(after, 3);
    expect(after).toMatchObject({ claimed: 2, skipped: 1, pending: 0 });

    // Nothing more to claim, though four members of its list have no row.
    const second = await claim(store, {
      newsletterId: created.id,
      runId: run.id,
      limit: 100,
      now: at(3),
      afterSubscriberId: 0,
    });
    expect(second.claimed).toEqual([]);
    await store.recordOutcomes(run.id, first.claimed.map(sentWrite), at(4));
    expect(await store.completeIfDone(created.id, at(5))).toBe(true);
    const done = await store.counts(created.id);
    expectAddsUp(done, 3);
    expect(done).toMatchObject({ sent: 2, skipped: 1, pending: 0 });
    const rows = await store.deliveries(created.id, { limit: 100 });
    expect(rows.map((d) => d.address).sort()).toEqual([
      'ann@example.org',
      'eve@example.org',
      'gil@example.org',
    ]);
  });

  it('`!=` includes those without the field; an excluded list leaves its members out of every read', async () => {
    const { store } = current();
    await seedReaders(store);
    const notParis: Segment = { where: [{ field: 'city', op: '!=', value: 'Paris' }], excludeLists: [] };
    const pending = await store.pendingRecipients(null, ['readers'], 0, 100, notParis);
    expect(pending.map((p) => p.address).sort()).toEqual(['cy@example.org', 'dee@example.org']);

    const noStaff: Segment = { where: [], excludeLists: ['staff'] };
    expect(await store.audienceSize(['readers', 'staff'], noStaff)).toBe(6);
    const everyoneButStaff = await store.pendingRecipients(null, ['readers', 'staff'], 0, 100, noStaff);
    expect(everyoneButStaff.map((p) => p.address)).not.toContain('fay@example.org');
    expect(everyoneButStaff.map((p) => p.address)).not.toContain('zed@example.org');

    // `email`, `name` and a value with quotes and SQL in it are compared as they are.
    const byEmail: Segment = {
      where: [{ field: 'email', op: '=', value: 'dee@example.org' }],
      excludeLists: [],
    };
    expect(await store.audienceSize(['readers'], byEmail)).toBe(1);
    const noName: Segment = { where: [{ field: 'name', op: '=', value: '' }], excludeLists: [] };
    expect((await store.pendingRecipients(null, ['readers'], 0, 100, noName)).map((p) => p.address)).toEqual([
      'gil@example.org',
    ]);
    const quoted: Segment = { where: [{ field: 'plan', op: '=', value: "o'brien; --" }], excludeLists: [] };
    expect(await store.audienceSize(['readers'], quoted)).toBe(1);
  });

  it('fieldGaps counts, among those who would be mailed, who lacks each field', async () => {
    const { store } = current();
    await seedReaders(store);
    // eve is suppressed: she would not be mailed, so she is not counted.
    const whole = await store.fieldGaps({ lists: ['readers'], segment: null }, ['city', 'name', 'nickname']);
    expect(whole).toEqual({
      recipients: 6,
      empty: [
        { field: 'city', count: 1 },
        { field: 'name', count: 1 },
        { field: 'nickname', count: 6 },
      ],
    });
    const paris = await store.fieldGaps({ lists: ['readers'], segment: PARIS_PAYING }, ['city', 'name']);
    expect(paris).toEqual({
      recipients: 2,
      empty: [
        { field: 'city', count: 0 },
        { field: 'name', count: 1 },
      ],
    });
    expect(await store.fieldGaps({ lists: [], segment: null }, ['city'])).toEqual({
      recipients: 0,
      empty: [],
    });
  });

  it('a segment follows its excluded list when it is renamed; a list a scheduled segment excludes is not deleted', async () => {
    const { store } = current();
    await seedReaders(store);
    const created = await store.createNewsletter(
      {
        subject: 'Hello',
        templatePath: 'hello.mjml',
        from: null,
        lists: ['readers'],
        scheduledAt: at(60_000),
        segment: PARIS_PAYING,
      },
      at(0),
    );
    expect((await store.renameList('staff', 'team', at(1))).ok).toBe(true);
    const renamed = await store.getNewsletter(created.id);
    expect(renamed?.segment?.excludeLists).toEqual(['team']);
    expect(renamed?.segment?.where).toEqual(PARIS_PAYING.where);
    // Still the same three: fay, on the renamed list, stays out.
    expect((await store.counts(created.id)).audience).toBe(3);

    // Refused as any list in use (exit 4 at the CLI), naming the newsletter: not a bare constraint error.
    expect(await store.deleteList('team', at(2))).toMatchObject({
      ok: false,
      reason: 'in-use',
      newsletters: [{ id: created.id, status: 'scheduled' }],
    });
    expect((await store.lists()).map((list) => list.name)).toContain('team');
    expect((await store.counts(created.id)).audience).toBe(3);
    // Once it is no longer scheduled, the list may go.
    expect((await store.cancelNewsletter(created.id, at(3))).ok).toBe(true);
    expect((await store.deleteList('team', at(4))).ok).toBe(true);
  });
}
