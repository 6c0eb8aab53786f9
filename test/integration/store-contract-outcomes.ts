/**
 * The Store contract for an outcome write whose side effects depend on the fence (issue 17,
 * session 6: on PostgreSQL the fenced UPDATE, the 5.1.x suppression and the "cancelled" of a late
 * 4xx are one statement now; they were three). A write the fence refuses changes nothing at all:
 * not its row, and no suppression either. Run on both databases by store-contract.test.ts.
 */
import { expect, it } from 'vitest';
import type { OutcomeWrite } from '../../src/domain/ledger.js';
import type { Millis } from '../../src/domain/types.js';
import type { Store } from '../../src/store/store.js';
import {
  addresses,
  claim,
  registerTestRun,
  type StoreHandle,
  sendingNewsletter,
  sentWrite,
} from '../helpers/store-fixtures.js';

const T0: Millis = Date.now();
const at = (offsetMs: number): Millis => T0 + offsetMs;

function hardBounce(deliveryId: number, address: string): OutcomeWrite {
  return {
    deliveryId,
    state: 'failed',
    attempts: 1,
    nextAttemptAt: null,
    smtpReply: '550 5.1.1 no such user',
    queueId: null,
    suppressAddress: { address, reason: '550 5.1.1 no such user' },
  };
}

async function suppressed(store: Store): Promise<string[]> {
  return (await store.listSuppressions({ afterAddress: null, limit: 100 })).map((row) => row.address).sort();
}

export function outcomeContract(current: () => { store: Store; handle: StoreHandle }): void {
  it('a 5.1.x write the fence refuses suppresses nothing; the same write by the holder does', async () => {
    const { store } = current();
    const { newsletter } = await sendingNewsletter(store, {
      list: 'news',
      recipients: addresses(3),
      now: at(0),
    });
    const owner = await registerTestRun(store, at(0));
    const intruder = await registerTestRun(store, at(0));
    const [x, y, z] = (
      await claim(store, { newsletterId: newsletter.id, runId: owner.id, limit: 3, now: at(1) })
    ).claimed;

    // Another run's write: refused, and the address stays mailable.
    expect(await store.recordOutcomes(intruder.id, [hardBounce(x!.deliveryId, x!.address)], at(2))).toEqual({
      applied: 0,
      refused: 1,
      recorded: { sent: 0, failed: 0, retry: 0, unknown: 0, skipped: 0 },
    });
    expect(await suppressed(store)).toEqual([]);

    // In one batch: one refused (already written), two applied, one of them a 5.1.x.
    expect(await store.recordOutcomes(owner.id, [sentWrite(y!)], at(3))).toMatchObject({ applied: 1 });
    const mixed = await store.recordOutcomes(
      owner.id,
      [hardBounce(y!.deliveryId, y!.address), hardBounce(x!.deliveryId, x!.address), sentWrite(z!)],
      at(4),
    );
    expect(mixed).toEqual({
      applied: 2,
      refused: 1,
      recorded: { sent: 1, failed: 1, retry: 0, unknown: 0, skipped: 0 },
    });
    expect(await suppressed(store)).toEqual([x!.address]);
  });
}
