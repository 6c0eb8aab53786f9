/**
 * The Store contract for a claim that carries an earlier batch's outcomes (`ClaimRequest.record`,
 * issue 17): the outcomes are written exactly as `recordOutcomes` writes them (fenced by run and
 * `claimed`), the rows never handed over go back as `releaseClaims` puts them, and then the claim
 * runs, all in one transaction; whatever the claim finds (a cancelled newsletter, an ended run),
 * the outcomes are written. Loaded by store-contract.test.ts inside its loop over the stores
 * (SQLite there, PostgreSQL in postgres-contract.test.ts).
 */
import { expect, it } from 'vitest';
import type { Millis } from '../../src/domain/types.js';
import type { Store } from '../../src/store/store.js';
import {
  addresses,
  claim,
  LEASE_MS,
  sendingNewsletter,
  sentWrite,
  type StoreHandle,
  testMessageId,
} from '../helpers/store-fixtures.js';

const T0: Millis = Date.now();

export function claimRecordContract(current: () => { store: Store; handle: StoreHandle }): void {
  async function twoBatches(store: Store) {
    const { newsletter, starter } = await sendingNewsletter(store, {
      list: 'readers',
      recipients: addresses(6),
      now: T0,
    });
    const first = await claim(store, { newsletterId: newsletter.id, runId: starter.id, limit: 3, now: T0 });
    expect(first.claimed).toHaveLength(3);
    return { newsletter, starter, first };
  }

  it('writes the earlier batch (sent, and put back) and claims the next, in one call', async () => {
    const { store } = current();
    const { newsletter, starter, first } = await twoBatches(store);
    const [a, b, c] = first.claimed;
    if (!a || !b || !c) throw new Error('three rows expected');

    const next = await store.claimBatch({
      newsletterId: newsletter.id,
      runId: starter.id,
      limit: 3,
      now: T0 + 1,
      afterSubscriberId: first.lastSubscriberId,
      makeMessageId: testMessageId(newsletter.id),
      record: { writes: [sentWrite(a), sentWrite(b)], release: [c.deliveryId] },
    });

    expect(next.recorded).toMatchObject({ applied: 2, refused: 0, recorded: { sent: 2 } });
    expect(next.released).toBe(1);
    // The put-back row is due again, and the claim takes due retries first.
    expect(next.claimed.map((row) => row.deliveryId)).toContain(c.deliveryId);
    expect(next.claimed).toHaveLength(3);
    const rows = await store.deliveries(newsletter.id, { limit: 100 });
    const stateOf = (id: number) => rows.find((row) => row.id === id)?.state;
    expect([stateOf(a.deliveryId), stateOf(b.deliveryId)]).toEqual(['sent', 'sent']);
    expect(rows.filter((row) => row.state === 'claimed')).toHaveLength(3);
  });

  it('writes the outcomes even when the newsletter was cancelled meanwhile, and claims nothing', async () => {
    const { store } = current();
    const { newsletter, starter, first } = await twoBatches(store);
    expect(await store.cancelNewsletter(newsletter.id, T0 + 1)).toEqual({ ok: true });

    const next = await store.claimBatch({
      newsletterId: newsletter.id,
      runId: starter.id,
      limit: 3,
      now: T0 + 2,
      afterSubscriberId: first.lastSubscriberId,
      makeMessageId: testMessageId(newsletter.id),
      record: { writes: first.claimed.map(sentWrite), release: [] },
    });

    expect(next).toMatchObject({ stillSending: false, claimed: [] });
    expect(next.recorded).toMatchObject({ applied: 3, recorded: { sent: 3 } });
    const rows = await store.deliveries(newsletter.id, { limit: 100 });
    expect(rows.map((row) => row.state).sort()).toEqual(['sent', 'sent', 'sent']);
  });

  it("refuses the writes of a run that was ended (its rows are others' now), and claims nothing", async () => {
    const { store, handle } = current();
    const { newsletter, starter, first } = await twoBatches(store);
    const other = await handle.connect();
    // Another run, past this one's lease, ends it: its claimed rows become `unknown`.
    expect((await other.expireRuns(T0 + 2 * LEASE_MS, [])).unknown).toBe(3);

    const next = await store.claimBatch({
      newsletterId: newsletter.id,
      runId: starter.id,
      limit: 3,
      now: T0 + 2 * LEASE_MS + 1,
      afterSubscriberId: first.lastSubscriberId,
      makeMessageId: testMessageId(newsletter.id),
      record: { writes: first.claimed.map(sentWrite), release: [] },
    });

    expect(next.claimed).toEqual([]);
    expect(next.recorded).toMatchObject({ applied: 0, refused: 3 });
    const rows = await store.deliveries(newsletter.id, { limit: 100 });
    expect(rows.map((row) => row.state)).toEqual(['unknown', 'unknown', 'unknown']);
  });
}
