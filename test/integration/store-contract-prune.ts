/**
 * The Store contract for `prune` and `backup` (issue 15): a final newsletter's ledger rows are deleted and its
 * counts kept, exactly; suppressions and opt-outs stay; a newsletter that is not final, or that
 * still has unsettled rows, or that finished after the date, is never touched. Loaded by
 * store-contract.test.ts inside its loop over the stores, so it runs against SQLite there and
 * against PostgreSQL in postgres-contract.test.ts.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { InputError } from '../../src/domain/errors.js';
import { PRUNE_BATCH } from '../../src/domain/prune.js';
import type { Millis } from '../../src/domain/types.js';
import type { OutcomeWrite } from '../../src/domain/ledger.js';
import type { Store } from '../../src/store/store.js';
import {
  addresses,
  claim,
  type StoreHandle,
  sendingNewsletter,
  sentWrite,
} from '../helpers/store-fixtures.js';

const T0: Millis = Date.now();
const at = (offsetMs: number): Millis => T0 + offsetMs;
const DAY = 86_400_000;

function outcome(deliveryId: number, state: OutcomeWrite['state']): OutcomeWrite {
  return {
    deliveryId,
    state,
    attempts: 1,
    nextAttemptAt: null,
    smtpReply: state === 'sent' ? '250 2.0.0 Ok' : `reply for ${state}`,
    queueId: null,
    suppressAddress: null,
  };
}

/** A newsletter to `count` recipients, every one claimed and written `states[i]` (default sent). */
async function finishedNewsletter(
  store: Store,
  list: string,
  count: number,
  states: (index: number) => OutcomeWrite['state'] = () => 'sent',
) {
  const { newsletter, starter } = await sendingNewsletter(store, {
    list,
    recipients: addresses(count, list),
    now: at(0),
  });
  const claimed = (
    await claim(store, { newsletterId: newsletter.id, runId: starter.id, limit: count, now: at(1) })
  ).claimed;
  await store.recordOutcomes(
    starter.id,
    claimed.map((row, i) => (states(i) === 'sent' ? sentWrite(row) : outcome(row.deliveryId, states(i)))),
    at(2),
  );
  await store.completeIfDone(newsletter.id, at(3));
  return newsletter;
}

export function pruneContract(current: () => { store: Store; handle: StoreHandle }): void {
  it('deletes the ledger rows of a sent newsletter and keeps its counts, suppressions and opt-outs', async () => {
    const { store } = current();
    const newsletter = await finishedNewsletter(store, 'old', 6, (i) => (i === 0 ? 'failed' : 'sent'));
    await store.suppress('old-002@example.org', 'hard bounce 5.1.1', 'bounce', at(4));
    await store.unsubscribe('old-003@example.org', at(4));
    const before = await store.counts(newsletter.id);
    expect(before).toMatchObject({ audience: 6, sent: 5, failed: 1, pending: 0 });
    const suppressions = await store.listSuppressions({ afterAddress: null, limit: 100 });

    const [candidate] = await store.pruneCandidates();
    expect(candidate).toMatchObject({
      newsletterId: newsletter.id,
      status: 'sent',
      ledgerRows: 6,
      unsettled: 0,
    });
    expect(await store.pruneNewsletter(newsletter.id, at(DAY), at(5))).toEqual({
      newsletterId: newsletter.id,
      pruned: true,
      reason: null,
      deleted: 6,
    });
    expect(await store.deliveries(newsletter.id, { limit: 100 })).toEqual([]);
    expect(await store.counts(newsletter.id)).toEqual(before);
    expect((await store.getNewsletter(newsletter.id))?.prunedAt).toBe(at(5));
    expect(await store.listSuppressions({ afterAddress: null, limit: 100 })).toEqual(suppressions);
    expect((await store.getSubscriber('old-003@example.org'))?.status).toBe('unsubscribed');
    expect(await store.pruneCandidates()).toEqual([]);

    // A second prune finds nothing to do and leaves the kept counts as they were.
    expect(await store.pruneNewsletter(newsletter.id, at(DAY), at(6))).toMatchObject({
      pruned: false,
      reason: 'nothing-to-delete',
    });
    expect(await store.counts(newsletter.id)).toEqual(before);
  });

  it('keeps the counts of a pruned cancelled newsletter, whoever joins its lists later', async () => {
    const { store } = current();
    const { newsletter, starter } = await sendingNewsletter(store, {
      list: 'stopped',
      recipients: addresses(5, 'stopped'),
      now: at(0),
    });
    const claimed = (
      await claim(store, { newsletterId: newsletter.id, runId: starter.id, limit: 2, now: at(1) })
    ).claimed;
    await store.recordOutcomes(starter.id, claimed.map(sentWrite), at(2));
    expect(await store.cancelNewsletter(newsletter.id, at(3))).toEqual({ ok: true });
    const before = await store.counts(newsletter.id);
    expect(before).toMatchObject({ sent: 2, pending: 3 });

    expect(await store.pruneNewsletter(newsletter.id, at(DAY), at(4))).toMatchObject({
      pruned: true,
      deleted: 2,
    });
    await store.addSubscriber(
      { email: 'late@example.org', address: 'late@example.org', name: '', fields: {} },
      ['stopped'],
      at(5),
    );
    expect(await store.counts(newsletter.id)).toEqual(before);
  });

  it('never touches a newsletter that is sending, has unsettled rows, or finished after the date', async () => {
    const { store } = current();
    const { newsletter: sending, starter } = await sendingNewsletter(store, {
      list: 'live',
      recipients: addresses(4, 'live'),
      now: at(0),
    });
    const batch = (await claim(store, { newsletterId: sending.id, runId: starter.id, limit: 2, now: at(1) }))
      .claimed;
    await store.recordOutcomes(starter.id, batch.map(sentWrite), at(2));
    const unsettled = await finishedNewsletter(store, 'held', 3, (i) => (i === 0 ? 'unknown' : 'sent'));
    expect((await store.getNewsletter(unsettled.id))?.status).toBe('sent');
    const recent = await finishedNewsletter(store, 'recent', 2);

    const rowsOf = async (id: number) => (await store.deliveries(id, { limit: 100 })).length;
    const before = [await rowsOf(sending.id), await rowsOf(unsettled.id), await rowsOf(recent.id)];

    expect(await store.pruneNewsletter(sending.id, at(DAY), at(5))).toMatchObject({
      pruned: false,
      reason: 'not-final',
    });
    expect(await store.pruneNewsletter(unsettled.id, at(DAY), at(5))).toMatchObject({
      pruned: false,
      reason: 'unsettled',
    });
    // Finished at at(3): a date at or before that is not "before".
    expect(await store.pruneNewsletter(recent.id, at(3), at(5))).toMatchObject({
      pruned: false,
      reason: 'too-recent',
    });
    expect([await rowsOf(sending.id), await rowsOf(unsettled.id), await rowsOf(recent.id)]).toEqual(before);
    expect((await store.counts(sending.id)).pending).toBe(2);
  });

  it('deletes a ledger larger than one batch, in batches', async () => {
    const { store } = current();
    const count = PRUNE_BATCH + 3;
    const newsletter = await finishedNewsletter(store, 'big', count);
    const before = await store.counts(newsletter.id);
    expect(await store.pruneNewsletter(newsletter.id, at(DAY), at(5))).toMatchObject({
      pruned: true,
      deleted: count,
    });
    expect(await store.counts(newsletter.id)).toEqual(before);
  });

  it('backup: a checked, owner-only copy on SQLite; PostgreSQL refuses and points to pg_dump', async () => {
    const { store } = current();
    const dir = mkdtempSync(join(tmpdir(), 'newsletter-backup-contract-'));
    try {
      const file = join(dir, 'copy.db');
      if (store.kind === 'postgres') {
        const refused = store.backup(file);
        await expect(refused).rejects.toBeInstanceOf(InputError);
        await expect(refused).rejects.toMatchObject({ details: [expect.stringContaining('pg_dump')] });
        expect(existsSync(file)).toBe(false);
        return;
      }
      await finishedNewsletter(store, 'kept', 3);
      const result = await store.backup(file);
      expect(result).toMatchObject({ file, integrity: ['ok'] });
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(readdirSync(dir)).toEqual(['copy.db']);
      await expect(store.backup(file)).rejects.toBeInstanceOf(InputError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
