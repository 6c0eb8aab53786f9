/**
 * A report without a token finds its delivery through the newsletter its Message-ID names and the
 * address it reports (src/bounces/authenticate.ts), on a real SQLite ledger: one lookup by the
 * UNIQUE (newsletter, address) key for an honest report, a bounded number for a report stuffed
 * with addresses, none for a Message-ID that is not of our form.
 */
import { afterEach, beforeEach, expect, it } from 'vitest';
import { authenticate } from '../../src/bounces/authenticate.js';
import type { IncomingReport } from '../../src/bounces/report.js';
import type { ReportDelivery, ReportStore } from '../../src/store/report-store.js';
import {
  claim,
  registerTestRun,
  type StoreHandle,
  sendingNewsletter,
  sentWrite,
  sqliteFactory,
  TEST_MESSAGE_IDS,
} from '../helpers/store-fixtures.js';

let handle: StoreHandle;
let ann: ReportDelivery;

beforeEach(async () => {
  handle = await sqliteFactory().open();
  const { store } = handle;
  const now = Date.now();
  const { newsletter } = await sendingNewsletter(store, {
    list: 'news',
    recipients: ['ann@example.org', 'bob@example.org'],
    now,
  });
  const run = await registerTestRun(store, now);
  const batch = (await claim(store, { newsletterId: newsletter.id, runId: run.id, limit: 10, now })).claimed;
  await store.recordOutcomes(run.id, batch.map(sentWrite), now);
  const row = batch.find((b) => b.address === 'ann@example.org');
  ann = (await store.deliveryById(row?.deliveryId ?? 0)) as ReportDelivery;
});
afterEach(() => handle?.cleanup());

/** The store, counting the lookups by (newsletter, address). */
function counting(store: ReportStore) {
  const counted = {
    lookups: 0,
    deliveryById: (id: number) => store.deliveryById(id),
    deliveryTo: (newsletterId: number, address: string) => {
      counted.lookups += 1;
      return store.deliveryTo(newsletterId, address);
    },
  };
  return counted;
}

function dsn(addresses: string[], messageIds: string[]): IncomingReport {
  return {
    id: '<dsn@mx.example.net>',
    recipientFields: ['postmaster@example.org'],
    kind: 'dsn',
    dsnRecipients: addresses.map((address) => ({
      address,
      status: '5.1.1',
      action: 'failed',
      diagnostic: '',
    })),
    feedback: null,
    returnedMessageIds: messageIds,
    returnedReturnPaths: [],
  };
}

const KEYS = [TEST_MESSAGE_IDS.secret as string];

it('an honest report: one lookup, and the delivery whose Message-ID it returned', async () => {
  const store = counting(handle.store);
  const found = await authenticate(store, dsn(['ann@example.org'], [ann.messageId]), KEYS, []);
  expect(found).toMatchObject({ via: 'message-id', delivery: { deliveryId: ann.deliveryId } });
  expect(store.lookups).toBe(1);
});

it("another delivery's Message-ID about ann, or a Message-ID not of our form: nothing", async () => {
  const store = counting(handle.store);
  const bob = await handle.store.deliveryTo(ann.newsletterId, 'bob@example.org');
  expect(await authenticate(store, dsn(['ann@example.org'], [bob?.messageId ?? '']), KEYS, [])).toBeNull();
  expect(store.lookups).toBe(1);
  expect(await authenticate(store, dsn(['ann@example.org'], ['<abc@mx.example.net>']), KEYS, [])).toBeNull();
  expect(store.lookups).toBe(1);
});

it('a report stuffed with addresses costs at most 8 lookups, and authenticates nothing past them', async () => {
  const store = counting(handle.store);
  const stuffed = [...Array.from({ length: 30 }, (_, i) => `x${i}@example.org`), 'ann@example.org'];
  const ids = [ann.messageId, ann.messageId.replace('<n', '<n9'), ann.messageId.replace('<n', '<n8')];
  expect(await authenticate(store, dsn(stuffed, ids), KEYS, [])).toBeNull();
  expect(store.lookups).toBe(8);
});
