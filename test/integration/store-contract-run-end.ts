/**
 * The Store contract for "nobody stranded" (issue 11): how a run ends by any path, how a cancel
 * racing a run leaves every row final, how a schedule made during a build wins, and how expiry
 * heals what older versions left behind. Loaded by store-contract.test.ts inside its loop over
 * the stores, so it runs against SQLite there and against PostgreSQL in postgres-contract.test.ts.
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import { expect, it } from 'vitest';
import { LEDGER_REASON } from '../../src/domain/ledger-reasons.js';
import type { DeliveryState, Millis } from '../../src/domain/types.js';
import type { OutcomeWrite } from '../../src/domain/ledger.js';
import type { RunEnd } from '../../src/engine/store.js';
import type { Store } from '../../src/store/store.js';
import {
  addresses,
  claim,
  createScheduledNewsletter,
  fakeBody,
  registerTestRun,
  type StoreHandle,
  sendingNewsletter,
  sentWrite,
} from '../helpers/store-fixtures.js';

const T0: Millis = Date.now();
const at = (offsetMs: number): Millis => T0 + offsetMs;

const NO_COUNTS = { sent: 0, failed: 0, retry: 0, unknown: 0, skipped: 0 };

function ending(overrides: Partial<RunEnd> = {}): RunEnd {
  return { outcome: 'error', counts: NO_COUNTS, error: 'boom', outcomes: [], handedOver: [], ...overrides };
}

function retryWrite(deliveryId: number, nextAttemptAt: Millis): OutcomeWrite {
  return {
    deliveryId,
    state: 'retry',
    attempts: 1,
    nextAttemptAt,
    smtpReply: '450 4.2.0 Mailbox busy',
    queueId: null,
    suppressAddress: null,
  };
}

async function statesOf(
  store: Store,
  newsletterId: number,
): Promise<Map<number, { state: DeliveryState; reason: string | null }>> {
  const rows = await store.deliveries(newsletterId, { limit: 10_000 });
  return new Map(rows.map((row) => [row.id, { state: row.state, reason: row.reason }]));
}

/** One statement straight to the database, to build states that the store no longer writes. */
async function rawWrite(handle: StoreHandle, store: Store, sql: string): Promise<void> {
  if (store.kind === 'sqlite') {
    const db = new Database(handle.location);
    try {
      db.exec(sql);
    } finally {
      db.close();
    }
    return;
  }
  const client = new pg.Client({ connectionString: handle.location });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

export function runEndContract(current: () => { store: Store; handle: StoreHandle }): void {
  it('endRun writes known outcomes, makes what was handed over unknown, gives back the rest, and closes the run', async () => {
    const { store } = current();
    const { newsletter } = await sendingNewsletter(store, {
      list: 'news',
      recipients: addresses(6),
      now: at(0),
    });
    const run = await registerTestRun(store, at(0));
    const batch = (await claim(store, { newsletterId: newsletter.id, runId: run.id, limit: 5, now: at(1) }))
      .claimed;
    const [known, handed, never1, never2, retried] = batch.map((row) => row.deliveryId) as number[];

    const settlement = await store.endRun(
      run.id,
      ending({
        counts: { ...NO_COUNTS, sent: 7 },
        outcomes: [sentWrite(batch[0]!), retryWrite(retried!, at(60_000))],
        handedOver: [known!, handed!, retried!],
      }),
      at(2),
    );
    expect(settlement).toEqual({
      settled: true,
      recorded: { sent: 1, failed: 0, retry: 1, unknown: 0, skipped: 0 },
      unknown: 1,
      released: 2,
    });
    const states = await statesOf(store, newsletter.id);
    expect(states.get(known!)?.state).toBe('sent');
    expect(states.get(handed!)).toEqual({ state: 'unknown', reason: LEDGER_REASON.endedBeforeRecording });
    expect(states.get(never1!)?.state).toBe('retry');
    expect(states.get(never2!)?.state).toBe('retry');
    expect(states.get(retried!)?.state).toBe('retry');
    const counts = await store.counts(newsletter.id);
    expect(counts).toMatchObject({ claimed: 0, sent: 1, unknown: 1, retry: 3, pending: 1 });
    const [stored] = (await store.listRuns(10)).filter((r) => r.id === run.id);
    expect(stored).toMatchObject({
      endedAt: at(2),
      outcome: 'error',
      counts: { sent: 8, retry: 1, unknown: 1 },
    });
    expect(await store.renewLease(run.id, at(3), 60_000)).toBe(false);
  });

  it('endRun of a run that another run already ended changes no delivery', async () => {
    const { store } = current();
    const { newsletter } = await sendingNewsletter(store, {
      list: 'news',
      recipients: addresses(3),
      now: at(0),
    });
    const run = await registerTestRun(store, at(0), { leaseMs: 1000 });
    const batch = (await claim(store, { newsletterId: newsletter.id, runId: run.id, limit: 3, now: at(1) }))
      .claimed;
    expect(await store.expireRuns(at(5000), [])).toMatchObject({ runs: 1, unknown: 3 });
    const before = await store.deliveries(newsletter.id, { limit: 100 });

    const settlement = await store.endRun(
      run.id,
      ending({ outcomes: [sentWrite(batch[0]!)], handedOver: batch.map((row) => row.deliveryId) }),
      at(6000),
    );
    expect(settlement).toMatchObject({ settled: false, unknown: 0, released: 0 });
    expect(await store.deliveries(newsletter.id, { limit: 100 })).toEqual(before);
    expect((await store.listRuns(10)).find((r) => r.id === run.id)).toMatchObject({ outcome: 'lost' });
  });

  it('a cancel during a send leaves every row final: a late 4xx and what was never handed over are skipped, "cancelled"', async () => {
    const { store } = current();
    const { newsletter } = await sendingNewsletter(store, {
      list: 'news',
      recipients: addresses(8),
      now: at(0),
    });
    const run = await registerTestRun(store, at(0));
    const batch = (await claim(store, { newsletterId: newsletter.id, runId: run.id, limit: 6, now: at(1) }))
      .claimed;
    const ids = batch.map((row) => row.deliveryId);
    expect(await store.cancelNewsletter(newsletter.id, at(2))).toEqual({ ok: true });

    // The batch in flight during the cancel: one accepted, one 4xx, one cut after the data.
    const recorded = await store.recordOutcomes(
      run.id,
      [
        sentWrite(batch[0]!),
        retryWrite(ids[1]!, at(60_000)),
        { ...sentWrite(batch[2]!), state: 'unknown', smtpReply: 'connection lost after data' },
      ],
      at(3),
    );
    expect(recorded).toEqual({
      applied: 3,
      refused: 0,
      recorded: { sent: 1, failed: 0, retry: 0, unknown: 1, skipped: 1 },
    });
    // One never handed over, given back; two more still held when the run ends.
    expect(await store.releaseClaims(run.id, [ids[3]!], at(4))).toBe(1);
    const settlement = await store.endRun(run.id, ending({ outcome: 'ok', error: null }), at(5));
    expect(settlement).toMatchObject({ settled: true, unknown: 0, released: 2 });

    const states = await statesOf(store, newsletter.id);
    expect([...states.values()].map((row) => row.state)).toEqual([
      'sent',
      'skipped',
      'unknown',
      'skipped',
      'skipped',
      'skipped',
    ]);
    for (const id of [ids[1]!, ids[3]!, ids[4]!, ids[5]!])
      expect(states.get(id)?.reason).toBe(LEDGER_REASON.cancelled);
    const counts = await store.counts(newsletter.id);
    expect(counts).toMatchObject({ claimed: 0, retry: 0, sent: 1, unknown: 1, skipped: 4 });
  });

  it('beginSending and markBuildFailed refuse a newsletter rescheduled while its body was built', async () => {
    const { store } = current();
    await sendingNewsletter(store, { list: 'news', recipients: addresses(2), now: at(0) });
    const run = await registerTestRun(store, at(0));
    const read = await createScheduledNewsletter(store, ['news'], at(0));
    // The operator postpones it while the run builds what it read.
    expect(await store.scheduleNewsletter(read.id, at(7_200_000), at(1))).toEqual({ ok: true });
    expect(await store.beginSending(read, fakeBody(), run.id, at(2))).toBe(false);
    expect(await store.markBuildFailed(read, 'broken', at(2))).toBe(false);
    expect(await store.getNewsletter(read.id)).toMatchObject({
      status: 'scheduled',
      scheduledAt: at(7_200_000),
      body: null,
    });
    // What the next run reads is current: it may begin.
    const reread = (await store.getNewsletter(read.id))!;
    expect(await store.beginSending(reread, fakeBody(), run.id, at(3))).toBe(true);
  });

  it('expireRuns heals rows left claimed by a closed run, and retries of a cancelled newsletter', async () => {
    const { store, handle } = current();
    const { newsletter } = await sendingNewsletter(store, {
      list: 'news',
      recipients: addresses(6),
      now: at(0),
    });
    const closed = await registerTestRun(store, at(0));
    const live = await registerTestRun(store, at(0));
    const stranded = (
      await claim(store, { newsletterId: newsletter.id, runId: closed.id, limit: 2, now: at(1) })
    ).claimed;
    const held = (await claim(store, { newsletterId: newsletter.id, runId: live.id, limit: 2, now: at(1) }))
      .claimed;
    // What an older version's error path did: close the run row and leave its claims.
    await rawWrite(
      handle,
      store,
      `UPDATE runs SET ended_at = ${at(2)}, outcome = 'error' WHERE id = ${closed.id}`,
    );
    // And a second newsletter, cancelled, with a retry row written after the cancel.
    const other = await sendingNewsletter(store, {
      list: 'more',
      recipients: addresses(2, 'other'),
      now: at(0),
    });
    const late = (
      await claim(store, { newsletterId: other.newsletter.id, runId: live.id, limit: 1, now: at(1) })
    ).claimed;
    await store.recordOutcomes(live.id, [retryWrite(late[0]!.deliveryId, at(60_000))], at(2));
    expect(await store.cancelNewsletter(other.newsletter.id, at(3))).toEqual({ ok: true });
    await rawWrite(handle, store, `UPDATE deliveries SET state = 'retry' WHERE id = ${late[0]!.deliveryId}`);
    expect(await store.completeIfDone(newsletter.id, at(3))).toBe(false);

    expect(await store.expireRuns(at(4), [])).toEqual({
      runs: 0,
      unknown: 0,
      stranded: 2,
      cancelledRetries: 1,
    });
    const states = await statesOf(store, newsletter.id);
    for (const row of stranded)
      expect(states.get(row.deliveryId)).toEqual({ state: 'unknown', reason: LEDGER_REASON.stranded });
    // A live run's claims are its own.
    for (const row of held) expect(states.get(row.deliveryId)?.state).toBe('claimed');
    expect((await statesOf(store, other.newsletter.id)).get(late[0]!.deliveryId)).toEqual({
      state: 'skipped',
      reason: LEDGER_REASON.cancelled,
    });
    // Healed once: the next expiry finds nothing.
    expect(await store.expireRuns(at(5), [])).toEqual({
      runs: 0,
      unknown: 0,
      stranded: 0,
      cancelledRetries: 0,
    });
  });
}
