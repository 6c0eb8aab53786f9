/**
 * Store.hardBounces on SQLite and PostgreSQL: a newsletter's `failed` rows whose address is
 * suppressed, which `show` and `status` report as list hygiene (README, "Exit codes"). A 5.1.x
 * reply writes the failure and the suppression together; any other failure is not counted.
 */
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { OutcomeWrite } from '../../src/domain/ledger.js';
import { POSTGRES, postgresFactory, stopSharedCluster } from '../helpers/postgres.js';
import {
  addresses,
  claim,
  registerTestRun,
  sendingNewsletter,
  sentWrite,
  sqliteFactory,
  type StoreHandle,
} from '../helpers/store-fixtures.js';

const NOW = Date.UTC(2026, 11, 1, 9, 0, 0);

const factories = [sqliteFactory(), ...(POSTGRES.ok ? [postgresFactory()] : [])];

afterAll(async () => {
  if (POSTGRES.ok) await stopSharedCluster();
});

describe.each(factories)('Store.hardBounces: $name', (factory) => {
  let handle: StoreHandle;
  beforeEach(async () => {
    handle = await factory.open();
  });
  afterEach(async () => handle.cleanup());

  it('counts the failed rows whose address was suppressed with the failure, and names the first ones', async () => {
    const { store } = handle;
    const recipients = addresses(6);
    const { newsletter } = await sendingNewsletter(store, { list: 'news', recipients, now: NOW });
    const run = await registerTestRun(store, NOW);
    const { claimed } = await claim(store, {
      newsletterId: newsletter.id,
      runId: run.id,
      limit: 6,
      now: NOW,
    });
    expect(claimed).toHaveLength(6);
    const failed = (index: number, suppress: boolean): OutcomeWrite => {
      const delivery = claimed[index]!;
      const reply = suppress ? '550 5.1.1 user unknown (RCPT TO)' : '550 5.7.1 refused by policy (RCPT TO)';
      return {
        ...sentWrite(delivery),
        state: 'failed',
        smtpReply: reply,
        queueId: null,
        suppressAddress: suppress ? { address: delivery.address, reason: reply } : null,
      };
    };
    const writes = [
      sentWrite(claimed[0]!),
      failed(1, true),
      failed(2, false),
      failed(3, true),
      failed(4, true),
      sentWrite(claimed[5]!),
    ];
    expect((await store.recordOutcomes(run.id, writes, NOW)).refused).toBe(0);

    expect(await store.hardBounces(newsletter.id, 50)).toEqual({
      count: 3,
      addresses: [claimed[1]!.address, claimed[3]!.address, claimed[4]!.address],
    });
    expect(await store.hardBounces(newsletter.id, 2)).toEqual({
      count: 3,
      addresses: [claimed[1]!.address, claimed[3]!.address],
    });
    expect(await store.hardBounces(newsletter.id, 0)).toEqual({ count: 3, addresses: [] });
    // A suppression lifted by the operator: that failure is no longer hygiene done.
    await store.unsuppress(claimed[3]!.address, NOW);
    expect((await store.hardBounces(newsletter.id, 50)).count).toBe(2);
    // Another newsletter's rows are its own.
    expect(await store.hardBounces(newsletter.id + 1, 50)).toEqual({ count: 0, addresses: [] });
  });
});
