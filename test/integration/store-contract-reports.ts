/**
 * The Store contract for issue 18: authenticated reports. A report is recorded against one ledger
 * row, once per (delivery, kind); soft bounces count per delivery; a complaint suppresses with
 * source "complaint"; the suppression keeps the report's Message-ID; the counts per newsletter
 * outlive a prune. Loaded by store-contract.test.ts inside its loop over the stores, so it runs
 * against SQLite there and against PostgreSQL in postgres-contract.test.ts.
 */
import { expect, it } from 'vitest';
import type { Millis } from '../../src/domain/types.js';
import type { ReportDelivery } from '../../src/store/report-store.js';
import type { Store } from '../../src/store/store.js';
import type { StoreHandle } from '../helpers/store-fixtures.js';
import { claim, registerTestRun, sendingNewsletter, sentWrite } from '../helpers/store-fixtures.js';

const T0: Millis = Date.now();
const at = (offsetMs: number): Millis => T0 + offsetMs;

/** A newsletter sent to `recipients`; its ledger rows as reports see them, by address. */
async function sent(store: Store, recipients: string[], list = 'news'): Promise<Map<string, ReportDelivery>> {
  const { newsletter } = await sendingNewsletter(store, { list, recipients, now: at(0) });
  const run = await registerTestRun(store, at(1));
  const batch = (await claim(store, { newsletterId: newsletter.id, runId: run.id, limit: 100, now: at(2) }))
    .claimed;
  await store.recordOutcomes(run.id, batch.map(sentWrite), at(3));
  const rows = new Map<string, ReportDelivery>();
  for (const row of batch) {
    const found = await store.deliveryById(row.deliveryId);
    if (!found) throw new Error(`no ledger row ${row.deliveryId}`);
    rows.set(row.address, found);
  }
  return rows;
}

async function suppressionOf(store: Store, address: string) {
  const all = await store.listSuppressions({ afterAddress: null, limit: 1000 });
  return all.find((s) => s.address === address) ?? null;
}

export function reportContract(current: () => { store: Store; handle: StoreHandle }): void {
  it('finds a ledger row by id and by newsletter and address, with its Message-ID, subscriber and address', async () => {
    const { store } = current();
    const rows = await sent(store, ['ann@example.org', 'bob@example.org']);
    const ann = rows.get('ann@example.org') as ReportDelivery;
    expect(ann).toMatchObject({ address: 'ann@example.org', newsletterId: expect.any(Number) });
    expect(ann.subscriberId).toEqual((await store.getSubscriber('ann@example.org'))?.id);
    expect(await store.deliveryTo(ann.newsletterId, 'ann@example.org')).toEqual(ann);
    expect(await store.deliveryTo(ann.newsletterId, 'nobody@example.org')).toBeNull();
    expect(await store.deliveryTo(ann.newsletterId + 1, 'ann@example.org')).toBeNull();
    expect(await store.deliveryById(ann.deliveryId + 1000)).toBeNull();
  });

  it("counts a hard bounce once per delivery and suppresses with the report's Message-ID", async () => {
    const { store } = current();
    const rows = await sent(store, ['ann@example.org', 'bob@example.org']);
    const ann = rows.get('ann@example.org') as ReportDelivery;
    const event = {
      delivery: ann,
      reportId: '<dsn-1@mx.example.net>',
      kind: 'hard' as const,
      status: '5.1.1',
      reason: '550 5.1.1 no such user',
    };
    expect(await store.recordReport(event, { softLimit: 3, now: at(10) })).toEqual({
      recorded: true,
      suppressed: true,
      softCount: 0,
    });
    // The same delivery again, in another report: nothing changes.
    expect(
      await store.recordReport(
        { ...event, reportId: '<dsn-2@mx.example.net>' },
        { softLimit: 3, now: at(11) },
      ),
    ).toEqual({ recorded: false, suppressed: false, softCount: 0 });
    expect(await suppressionOf(store, 'ann@example.org')).toEqual({
      address: 'ann@example.org',
      reason: 'hard bounce 5.1.1: 550 5.1.1 no such user',
      source: 'bounce',
      createdAt: at(10),
      reportId: '<dsn-1@mx.example.net>',
    });
    expect(await suppressionOf(store, 'bob@example.org')).toBeNull();
    const counts = await store.reportCounts([ann.newsletterId, ann.newsletterId + 99]);
    expect(counts.get(ann.newsletterId)).toEqual({ bounced: 1, hard: 1, soft: 0, complained: 0 });
    expect(counts.get(ann.newsletterId + 99)).toEqual({ bounced: 0, hard: 0, soft: 0, complained: 0 });
  });

  it('counts soft bounces per delivery: three reports about one delivery are one, three deliveries reach the limit', async () => {
    const { store } = current();
    const first = (await sent(store, ['ann@example.org'], 'one')).get('ann@example.org') as ReportDelivery;
    const soft = (delivery: ReportDelivery, reportId: string, now: Millis) =>
      store.recordReport(
        { delivery, reportId, kind: 'soft', status: '4.2.2', reason: 'mailbox full' },
        { softLimit: 3, now },
      );
    expect(await soft(first, '<d1@mx>', at(10))).toEqual({ recorded: true, suppressed: false, softCount: 1 });
    expect(await soft(first, '<d2@mx>', at(11))).toMatchObject({ recorded: false });
    expect(await soft(first, '<d3@mx>', at(12))).toMatchObject({ recorded: false });
    expect(await suppressionOf(store, 'ann@example.org')).toBeNull();

    const second = (await sent(store, ['ann@example.org'], 'two')).get('ann@example.org') as ReportDelivery;
    const third = (await sent(store, ['ann@example.org'], 'three')).get('ann@example.org') as ReportDelivery;
    expect(await soft(second, '<d4@mx>', at(13))).toEqual({
      recorded: true,
      suppressed: false,
      softCount: 2,
    });
    expect(await soft(third, '<d5@mx>', at(14))).toEqual({ recorded: true, suppressed: true, softCount: 3 });
    expect(await suppressionOf(store, 'ann@example.org')).toMatchObject({
      source: 'bounce',
      reason: '3 soft bounces, the last 4.2.2: mailbox full',
      reportId: '<d5@mx>',
    });
    expect((await store.reportCounts([first.newsletterId])).get(first.newsletterId)).toEqual({
      bounced: 1,
      hard: 0,
      soft: 1,
      complained: 0,
    });
  });

  it('suppresses a complaint with source "complaint", once per delivery, and counts it apart from bounces', async () => {
    const { store } = current();
    const rows = await sent(store, ['ann@example.org', 'bob@example.org']);
    const bob = rows.get('bob@example.org') as ReportDelivery;
    const complaint = {
      delivery: bob,
      reportId: '<arf-1@fbl.example.net>',
      kind: 'complaint' as const,
      status: 'abuse',
      reason: 'complaint (abuse) reported by SomeGenerator/1.0',
    };
    expect(await store.recordReport(complaint, { softLimit: 3, now: at(10) })).toMatchObject({
      recorded: true,
      suppressed: true,
    });
    expect(await store.recordReport(complaint, { softLimit: 3, now: at(11) })).toMatchObject({
      recorded: false,
    });
    // A bounce of the same delivery still counts as a bounce (the address stays suppressed as it was).
    expect(
      await store.recordReport(
        { ...complaint, reportId: '<dsn@mx>', kind: 'hard', status: '5.1.1', reason: 'gone' },
        { softLimit: 3, now: at(12) },
      ),
    ).toEqual({ recorded: true, suppressed: false, softCount: 0 });
    expect(await suppressionOf(store, 'bob@example.org')).toMatchObject({
      source: 'complaint',
      reason: 'complaint (abuse) reported by SomeGenerator/1.0',
      reportId: '<arf-1@fbl.example.net>',
    });
    expect((await store.reportCounts([bob.newsletterId])).get(bob.newsletterId)).toEqual({
      bounced: 1,
      hard: 1,
      soft: 0,
      complained: 1,
    });
  });

  it('keeps the counts after the ledger rows are pruned; lifting a suppression stops old soft bounces counting', async () => {
    const { store } = current();
    const ann = (await sent(store, ['ann@example.org'])).get('ann@example.org') as ReportDelivery;
    await store.recordReport(
      { delivery: ann, reportId: '<s@mx>', kind: 'soft', status: '4.4.7', reason: 'expired' },
      { softLimit: 1, now: at(10) },
    );
    expect(await suppressionOf(store, 'ann@example.org')).toMatchObject({ source: 'bounce' });
    expect(await store.unsuppress('ann@example.org', at(11))).toBe(true);
    const pruned = await store.pruneNewsletter(ann.newsletterId, at(1_000_000_000), at(1_000_000_001));
    if (pruned.pruned) expect(await store.deliveryById(ann.deliveryId)).toBeNull();
    expect((await store.reportCounts([ann.newsletterId])).get(ann.newsletterId)).toMatchObject({
      bounced: 1,
      soft: 1,
    });
  });
}
