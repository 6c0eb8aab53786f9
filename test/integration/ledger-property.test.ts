/**
 * The ledger under random interleavings, against the real SQLite store on a temp file.
 *
 * A model follows every row of one newsletter while fast-check drives three runs (slots that get
 * a new run, as the next cron start would, whenever theirs is ended) through claims, outcomes,
 * crashes, lease expiry, releases, operator reconciles, unsubscribes, completion and the odd
 * cancel. After every step the store must agree with the model row by row, and:
 *
 * - never twice: no address is recorded `sent` twice, a row that was ever `sent` is never claimed
 *   again, and the claims that may have reached a recipient (outcome sent, unknown, or still in
 *   flight) number at most one plus the operator's resends of that address;
 * - the counts add up to the audience, which never changes;
 * - a write fenced by a run that no longer holds the row is refused and leaves the row as it was.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DeliveryState, Millis, NewsletterStatus } from '../../src/domain/types.js';
import type { OutcomeWrite } from '../../src/domain/ledger.js';
import type { Store } from '../../src/store/store.js';
import {
  addresses,
  claim,
  createScheduledNewsletter,
  fakeBody,
  registerTestRun,
  type StoreHandle,
  seedSubscribers,
  sqliteFactory,
} from '../helpers/store-fixtures.js';

const LEASE = 10_000;
const SLOTS = 3;

interface Sub {
  id: number;
  address: string;
  unsubscribed: boolean;
  suppressed: boolean;
}

interface Row {
  address: string;
  deliveryId: number;
  state: DeliveryState;
  /** The run that claimed it last: the only one whose writes may land while it is `claimed`. */
  runId: number;
  attempts: number;
  nextAttemptAt: Millis | null;
}

interface Model {
  now: Millis;
  status: NewsletterStatus;
  subs: Sub[];
  rows: Map<string, Row>;
  slots: number[];
  runs: Map<number, { leaseUntil: Millis; ended: boolean }>;
  /** Every claim ever made, stale ones included: the targets of late writes. */
  claims: { address: string; deliveryId: number; runId: number }[];
  sentRecorded: Map<string, number>;
  everSent: Set<string>;
  mayHaveReached: Map<string, number>;
  resends: Map<string, number>;
}

interface Real {
  store: Store;
  newsletterId: number;
}

type Cmd = fc.AsyncCommand<Model, Real>;

const bump = (map: Map<string, number>, key: string, by = 1) => map.set(key, (map.get(key) ?? 0) + by);

/** Written as `skipped` when claimed: unsubscribed or suppressed (or gone). */
function isSkipped(sub: Sub | undefined): boolean {
  return !sub || sub.unsubscribed || sub.suppressed;
}

function subOf(model: Model, address: string): Sub | undefined {
  return model.subs.find((s) => s.address === address);
}

async function registerSlotRun(model: Model, real: Real, slot: number): Promise<void> {
  const run = await registerTestRun(real.store, model.now, { leaseMs: LEASE });
  model.slots[slot] = run.id;
  model.runs.set(run.id, { leaseUntil: run.leaseUntil, ended: false });
}

/** expireRuns at model.now, predicted; then every slot whose run ended gets a new run. */
async function expire(model: Model, real: Real, dead: number[]): Promise<void> {
  const ending = [...model.runs.entries()]
    .filter(([id, run]) => !run.ended && (run.leaseUntil < model.now || dead.includes(id)))
    .map(([id]) => id);
  const unknown = [...model.rows.values()].filter(
    (row) => row.state === 'claimed' && ending.includes(row.runId),
  );
  expect(await real.store.expireRuns(model.now, dead)).toMatchObject({
    runs: ending.length,
    unknown: unknown.length,
  });
  for (const id of ending) model.runs.get(id)!.ended = true;
  for (const row of unknown) row.state = 'unknown';
  for (let slot = 0; slot < SLOTS; slot++) {
    if (model.runs.get(model.slots[slot]!)!.ended) await registerSlotRun(model, real, slot);
  }
}

// ---- commands ---------------------------------------------------------------------------------

type Who = { slot: number } | { endedRun: number };

/** A slot's current run, or one of the runs already ended (null while there is none). */
function runFor(model: Model, who: Who): number | null {
  if ('slot' in who) return model.slots[who.slot]!;
  const ended = [...model.runs.entries()].filter(([, run]) => run.ended).map(([id]) => id);
  return ended.length === 0 ? null : ended[who.endedRun % ended.length]!;
}

class Claim implements Cmd {
  constructor(
    readonly who: Who,
    readonly limit: number,
  ) {}
  check = () => true;
  async run(model: Model, real: Real) {
    const runId = runFor(model, this.who);
    if (runId === null) return;
    const result = await claim(real.store, {
      newsletterId: real.newsletterId,
      runId,
      limit: this.limit,
      now: model.now,
    });

    if (model.status !== 'sending') {
      expect(result).toMatchObject({ claimed: [], skipped: 0, stillSending: false });
      return;
    }
    if (model.runs.get(runId)!.ended) {
      expect(result).toMatchObject({ claimed: [], skipped: 0 });
      return;
    }
    // Due retries first (by due time, then row id), then recipients without a row (by subscriber id).
    const retries = [...model.rows.values()]
      .filter((row) => row.state === 'retry' && row.nextAttemptAt! <= model.now)
      .sort((a, b) => a.nextAttemptAt! - b.nextAttemptAt! || a.deliveryId - b.deliveryId)
      .slice(0, this.limit);
    const fresh = model.subs.filter((s) => !model.rows.has(s.address)).slice(0, this.limit - retries.length);
    const expectClaimed = [
      ...retries.filter((row) => !isSkipped(subOf(model, row.address))).map((row) => row.address),
      ...fresh.filter((s) => !isSkipped(s)).map((s) => s.address),
    ];
    const expectSkipped = retries.length + fresh.length - expectClaimed.length;
    expect(result.stillSending).toBe(true);
    expect(result.claimed.map((c) => c.address).sort()).toEqual([...expectClaimed].sort());
    expect(result.skipped).toBe(expectSkipped);

    for (const row of retries) {
      if (isSkipped(subOf(model, row.address))) row.state = 'skipped';
    }
    for (const s of fresh) {
      if (isSkipped(s))
        model.rows.set(s.address, {
          address: s.address,
          deliveryId: -1,
          state: 'skipped',
          runId,
          attempts: 0,
          nextAttemptAt: null,
        });
    }
    for (const c of result.claimed) {
      // Never twice: a row that was `sent` (by a run or an operator) is never handed out again.
      expect(model.everSent.has(c.address)).toBe(false);
      const existing = model.rows.get(c.address);
      if (existing) {
        expect(c.deliveryId).toBe(existing.deliveryId);
        expect(c.attempts).toBe(existing.attempts);
        existing.state = 'claimed';
        existing.runId = runId;
      } else {
        expect(c.attempts).toBe(0);
        model.rows.set(c.address, {
          address: c.address,
          deliveryId: c.deliveryId,
          state: 'claimed',
          runId,
          attempts: 0,
          nextAttemptAt: null,
        });
      }
      model.claims.push({ address: c.address, deliveryId: c.deliveryId, runId });
      bump(model.mayHaveReached, c.address);
    }
    // Learn the ids of rows written as skipped.
    for (const row of await real.store.deliveries(real.newsletterId, { limit: 1000 })) {
      const mine = model.rows.get(row.address);
      if (mine && mine.deliveryId === -1) mine.deliveryId = row.id;
    }
  }
  toString() {
    return `Claim(${JSON.stringify(this.who)}, ${this.limit})`;
  }
}

class RecordOutcome implements Cmd {
  constructor(
    /** Any claim ever made (`pick`), or one of the latest (`back` from the end). */
    readonly which: { pick: number } | { back: number },
    readonly state: OutcomeWrite['state'],
    readonly retryDelay: number,
    /** Write as some other run than the one that made the claim. */
    readonly asRun: number | null,
  ) {}
  check = (model: Readonly<Model>) => model.claims.length > 0;
  async run(model: Model, real: Real) {
    const n = model.claims.length;
    const target = model.claims['pick' in this.which ? this.which.pick % n : n - 1 - (this.which.back % n)]!;
    const allRuns = [...model.runs.keys()];
    const runId = this.asRun === null ? target.runId : allRuns[this.asRun % allRuns.length]!;
    const row = model.rows.get(target.address)!;
    const holds = row.state === 'claimed' && row.runId === runId;
    const write: OutcomeWrite = {
      deliveryId: target.deliveryId,
      state: this.state,
      attempts: row.attempts + 1,
      nextAttemptAt: this.state === 'retry' ? model.now + this.retryDelay : null,
      smtpReply: `reply ${this.state}`,
      queueId: null,
      suppressAddress: null,
    };
    const before = (await real.store.deliveries(real.newsletterId, { limit: 1000 })).find(
      (d) => d.id === row.deliveryId,
    );
    const result = await real.store.recordOutcomes(runId, [write], model.now);
    expect(result).toMatchObject(holds ? { applied: 1, refused: 0 } : { applied: 0, refused: 1 });
    if (!holds) {
      // The fence: a run that does not hold the row changes nothing in it.
      const after = (await real.store.deliveries(real.newsletterId, { limit: 1000 })).find(
        (d) => d.id === row.deliveryId,
      );
      expect(after).toEqual(before);
      return;
    }
    // A 4xx of a cancelled newsletter is final: nothing would ever claim its retry.
    const cancelledRetry = this.state === 'retry' && model.status === 'cancelled';
    row.state = cancelledRetry ? 'skipped' : this.state;
    row.attempts = write.attempts;
    row.nextAttemptAt = cancelledRetry ? null : write.nextAttemptAt;
    if (this.state === 'sent') {
      bump(model.sentRecorded, row.address);
      model.everSent.add(row.address);
    }
    // A 4xx or 5xx means the message was not taken: that claim reached nobody.
    if (this.state === 'retry' || this.state === 'failed') bump(model.mayHaveReached, row.address, -1);
  }
  toString() {
    return `Record(${JSON.stringify(this.which)}, ${this.state}, +${this.retryDelay}ms, as ${this.asRun ?? 'claimant'})`;
  }
}

class Crash implements Cmd {
  constructor(readonly slot: number) {}
  check = () => true;
  async run(model: Model, real: Real) {
    await expire(model, real, [model.slots[this.slot]!]);
  }
  toString() {
    return `Crash(slot ${this.slot})`;
  }
}

class Tick implements Cmd {
  constructor(
    readonly ms: number,
    readonly thenExpire: boolean,
  ) {}
  check = () => true;
  async run(model: Model, real: Real) {
    model.now += this.ms;
    if (this.thenExpire) await expire(model, real, []);
  }
  toString() {
    return `Tick(+${this.ms}ms${this.thenExpire ? ', expireRuns' : ''})`;
  }
}

class Renew implements Cmd {
  constructor(readonly who: Who) {}
  check = () => true;
  async run(model: Model, real: Real) {
    const runId = runFor(model, this.who);
    if (runId === null) return;
    const run = model.runs.get(runId)!;
    // A run that was ended cannot bring itself back.
    expect(await real.store.renewLease(runId, model.now, LEASE)).toBe(!run.ended);
    if (!run.ended) run.leaseUntil = model.now + LEASE;
  }
  toString() {
    return `Renew(${JSON.stringify(this.who)})`;
  }
}

class Release implements Cmd {
  constructor(
    readonly slot: number,
    readonly includeOthers: boolean,
  ) {}
  check = () => true;
  async run(model: Model, real: Real) {
    const runId = model.slots[this.slot]!;
    const ids = new Set(model.claims.filter((c) => c.runId === runId).map((c) => c.deliveryId));
    if (this.includeOthers)
      for (const row of model.rows.values()) if (row.state === 'claimed') ids.add(row.deliveryId);
    const released = [...model.rows.values()].filter(
      (row) => ids.has(row.deliveryId) && row.state === 'claimed' && row.runId === runId,
    );
    expect(await real.store.releaseClaims(runId, [...ids], model.now)).toBe(released.length);
    for (const row of released) {
      // Never handed over: back to retry, or final ("cancelled") once the newsletter is cancelled.
      row.state = model.status === 'cancelled' ? 'skipped' : 'retry';
      row.nextAttemptAt = model.status === 'cancelled' ? null : model.now;
      bump(model.mayHaveReached, row.address, -1);
    }
  }
  toString() {
    return `Release(slot ${this.slot}${this.includeOthers ? ', with others' : ''})`;
  }
}

class Reconcile implements Cmd {
  constructor(
    readonly action: 'mark-sent' | 'resend',
    readonly picks: number[] | null,
  ) {}
  check = () => true;
  async run(model: Model, real: Real) {
    const targets = this.picks?.map((p) => model.subs[p % model.subs.length]!.address) ?? null;
    const result = await real.store.reconcile(real.newsletterId, this.action, targets, model.now);
    const settle =
      targets ?? [...model.rows.values()].filter((r) => r.state === 'unknown').map((r) => r.address);
    // A cancelled newsletter sends nothing: a resend is refused, and its unknown rows stay.
    const cancelled = model.status === 'cancelled';
    const refused = cancelled && this.action === 'resend';
    let notUnknown: string[] = [];
    let changed = 0;
    for (const address of settle) {
      const row = model.rows.get(address);
      if (row?.state !== 'unknown') {
        notUnknown.push(address);
        continue;
      }
      if (refused) continue;
      changed += 1;
      if (this.action === 'mark-sent') {
        row.state = 'sent';
        bump(model.sentRecorded, address);
        model.everSent.add(address);
      } else {
        row.state = 'retry';
        row.nextAttemptAt = model.now;
        bump(model.resends, address);
      }
    }
    // Either action writes a cancelled newsletter's retry rows skipped: nothing would claim them.
    const skipped = cancelled ? [...model.rows.values()].filter((row) => row.state === 'retry') : [];
    for (const row of skipped) {
      row.state = 'skipped';
      row.nextAttemptAt = null;
    }
    const skippedAddresses = new Set(skipped.map((row) => row.address));
    notUnknown = notUnknown.filter((address) => !skippedAddresses.has(address));
    expect(result).toMatchObject({
      changed,
      stranded: 0,
      notUnknown,
      cancelledRetries: skipped.length,
      refused: refused ? 'cancelled' : null,
    });
    if (this.action === 'resend' && changed > 0 && model.status === 'sent') model.status = 'sending';
  }
  toString() {
    return `Reconcile(${this.action}, ${this.picks ? `[${this.picks}]` : 'all unknown'})`;
  }
}

class Complete implements Cmd {
  check = () => true;
  async run(model: Model, real: Real) {
    const rows = [...model.rows.values()];
    const done =
      model.status === 'sending' &&
      model.subs.every((s) => model.rows.has(s.address)) &&
      rows.every((row) => row.state !== 'claimed' && row.state !== 'retry');
    expect(await real.store.completeIfDone(real.newsletterId, model.now)).toBe(done);
    if (done) model.status = 'sent';
  }
  toString() {
    return 'Complete';
  }
}

class Unsubscribe implements Cmd {
  constructor(readonly pick: number) {}
  check = () => true;
  async run(model: Model, real: Real) {
    const sub = model.subs[this.pick % model.subs.length]!;
    expect(await real.store.unsubscribe(sub.address, model.now)).toBe(!sub.unsubscribed);
    sub.unsubscribed = true;
  }
  toString() {
    return `Unsubscribe(#${this.pick})`;
  }
}

class Cancel implements Cmd {
  /** Only draw 0 cancels: a cancel early on would leave little to explore. */
  constructor(readonly draw: number) {}
  check = () => this.draw === 0;
  async run(model: Model, real: Real) {
    const ok = ['draft', 'scheduled', 'sending'].includes(model.status);
    expect(await real.store.cancelNewsletter(real.newsletterId, model.now)).toEqual(
      ok ? { ok: true } : { ok: false, status: model.status },
    );
    if (!ok) return;
    model.status = 'cancelled';
    for (const row of model.rows.values()) if (row.state === 'retry') row.state = 'skipped';
  }
  toString() {
    return 'Cancel';
  }
}

const slot = fc.integer({ min: 0, max: SLOTS - 1 });
const who: fc.Arbitrary<Who> = fc.oneof(
  { arbitrary: slot.map((s) => ({ slot: s })), weight: 4 },
  { arbitrary: fc.nat(8).map((n) => ({ endedRun: n })), weight: 1 },
);
const claimArbitrary = fc
  .tuple(who, fc.integer({ min: 1, max: 6 }))
  .map(([who, limit]) => new Claim(who, limit));
/** The outcome of one of the last few claims, written by its claimant: the common, happy case. */
const recentRecordArbitrary = fc
  .tuple(
    fc.nat(3),
    fc.constantFrom('sent', 'retry', 'unknown') as fc.Arbitrary<OutcomeWrite['state']>,
    fc.integer({ min: 0, max: LEASE }),
  )
  .map(([back, state, delay]) => new RecordOutcome({ back }, state, delay, null));
const commandArbitraries: fc.Arbitrary<Cmd>[] = [
  claimArbitrary,
  claimArbitrary,
  claimArbitrary,
  fc
    .tuple(
      fc.nat(30),
      fc.constantFrom('sent', 'failed', 'retry', 'unknown') as fc.Arbitrary<OutcomeWrite['state']>,
      fc.integer({ min: 0, max: 3 * LEASE }),
      fc.option(fc.nat(8), { freq: 3 }),
    )
    .map(([pick, state, delay, asRun]) => new RecordOutcome({ pick }, state, delay, asRun)),
  recentRecordArbitrary,
  recentRecordArbitrary,
  slot.map((s) => new Crash(s)),
  fc
    .tuple(fc.integer({ min: 0, max: 2 * LEASE }), fc.boolean())
    .map(([ms, thenExpire]) => new Tick(ms, thenExpire)),
  who.map((w) => new Renew(w)),
  fc.tuple(slot, fc.boolean()).map(([s, others]) => new Release(s, others)),
  fc
    .tuple(
      fc.constantFrom('mark-sent' as const, 'resend' as const),
      fc.option(fc.array(fc.nat(20), { minLength: 1, maxLength: 4 })),
    )
    .map(([action, picks]) => new Reconcile(action, picks)),
  fc.constant(new Complete()),
  fc.nat(20).map((n) => new Unsubscribe(n)),
  fc.nat(25).map((n) => new Cancel(n)),
];

// ---- the check after every step ---------------------------------------------------------------

async function verify(model: Model, real: Real): Promise<void> {
  const stored = await real.store.deliveries(real.newsletterId, { limit: 1000 });
  expect(stored.map((d) => d.address).sort()).toEqual([...model.rows.keys()].sort());
  for (const d of stored) {
    const row = model.rows.get(d.address)!;
    expect({ address: d.address, id: d.id, state: d.state, attempts: d.attempts }).toEqual({
      address: row.address,
      id: row.deliveryId,
      state: row.state,
      attempts: row.attempts,
    });
    if (d.state === 'claimed') expect(d.runId).toBe(row.runId);
    if (d.state === 'retry') expect(d.nextAttemptAt).toBe(row.nextAttemptAt);
  }

  const counts = await real.store.counts(real.newsletterId);
  const byState = (state: DeliveryState) => [...model.rows.values()].filter((r) => r.state === state).length;
  const pending = model.status === 'sent' ? 0 : model.subs.length - model.rows.size;
  expect(counts).toEqual({
    audience: model.subs.length,
    pending,
    claimed: byState('claimed'),
    sent: byState('sent'),
    failed: byState('failed'),
    retry: byState('retry'),
    unknown: byState('unknown'),
    skipped: byState('skipped'),
  });
  expect(
    counts.pending +
      counts.claimed +
      counts.sent +
      counts.failed +
      counts.retry +
      counts.unknown +
      counts.skipped,
  ).toBe(counts.audience);

  expect((await real.store.getNewsletter(real.newsletterId))?.status).toBe(model.status);
  const live = (await real.store.liveRuns()).map((r) => r.id).sort((a, b) => a - b);
  expect(live).toEqual([...model.runs.entries()].filter(([, r]) => !r.ended).map(([id]) => id));

  for (const [address, n] of model.sentRecorded) expect(n, `${address} recorded sent`).toBeLessThanOrEqual(1);
  for (const [address, n] of model.mayHaveReached) {
    expect(n, `${address} may have been handed over`).toBeLessThanOrEqual(
      1 + (model.resends.get(address) ?? 0),
    );
  }
}

/** Runs each command, then checks the store against the model. */
class Verified implements Cmd {
  constructor(readonly inner: Cmd) {}
  check = (model: Readonly<Model>) => this.inner.check(model);
  async run(model: Model, real: Real) {
    await this.inner.run(model, real);
    await verify(model, real);
  }
  toString() {
    return this.inner.toString();
  }
}

// ---- the property -----------------------------------------------------------------------------

const oneIn = (n: number) => fc.integer({ min: 1, max: n }).map((draw) => draw === 1);

async function setUp(handle: StoreHandle, audience: { unsubscribed: boolean; suppressed: boolean }[]) {
  const store = handle.store;
  const now = Date.now();
  const list = addresses(audience.length);
  // Subscribers of another list, between the audience's ids: never part of the audience.
  await seedSubscribers(store, 'news', list.slice(0, 2), now);
  await seedSubscribers(store, 'other', addresses(2, 'outsider'), now);
  await seedSubscribers(store, 'news', list.slice(2), now);
  const subs: Sub[] = [];
  for (const [i, flags] of audience.entries()) {
    const address = list[i]!;
    const found = await store.getSubscriber(address);
    if (flags.unsubscribed) await store.unsubscribe(address, now);
    if (flags.suppressed) await store.suppress(address, '550 5.1.1 earlier bounce', 'smtp', now);
    subs.push({ id: found!.id, address, ...flags });
  }
  const newsletter = await createScheduledNewsletter(store, ['news'], now);
  const starter = await registerTestRun(store, now, { leaseMs: LEASE });
  expect(await store.beginSending(newsletter, fakeBody({ compiledAt: now }), starter.id, now)).toBe(true);

  const model: Model = {
    now,
    status: 'sending',
    subs,
    rows: new Map(),
    slots: [],
    runs: new Map([[starter.id, { leaseUntil: starter.leaseUntil, ended: false }]]),
    claims: [],
    sentRecorded: new Map(),
    everSent: new Set(),
    mayHaveReached: new Map(),
    resends: new Map(),
  };
  const real: Real = { store, newsletterId: newsletter.id };
  for (let s = 0; s < SLOTS; s++) await registerSlotRun(model, real, s);
  await verify(model, real);
  return { model, real };
}

describe('the ledger under random interleavings (SQLite, real file)', () => {
  it('keeps never-twice, counts and fencing after every step', async () => {
    const factory = sqliteFactory();
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ unsubscribed: oneIn(6), suppressed: oneIn(8) }), {
          minLength: 5,
          maxLength: 15,
        }),
        fc.commands(
          commandArbitraries.map((arbitrary) => arbitrary.map((cmd) => new Verified(cmd) as Cmd)),
          { maxCommands: 60, size: 'max' },
        ),
        async (audience, commands) => {
          const handle = await factory.open();
          try {
            const initial = await setUp(handle, audience);
            await fc.asyncModelRun(() => initial, commands);
          } finally {
            await handle.cleanup();
          }
        },
      ),
      { numRuns: 100 },
    );
  });
});
