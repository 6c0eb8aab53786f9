/**
 * Issue 17: a claim's deliveries and a record's outcome writes cross to and from the ledger's own
 * thread as flat arrays of values (src/store/sqlite/ledger-messages.ts). What comes out on the
 * other side must equal what went in, field for field, in the same order, through a real
 * structured clone (the one a worker's message goes through), whatever the values hold.
 */
import { deserialize, serialize } from 'node:v8';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { OutcomeWrite } from '../../src/domain/ledger.js';
import type { ClaimedDelivery } from '../../src/domain/types.js';
import type { ClaimResult } from '../../src/engine/store.js';
import { packClaim, packWrites, unpackClaim, unpackWrites } from '../../src/store/sqlite/ledger-messages.js';

const clone = <T>(value: T): T => deserialize(serialize(value)) as T;

const text = fc.string({ unit: 'binary', maxLength: 60 });

const delivery = (newsletterId: number): fc.Arbitrary<ClaimedDelivery> =>
  fc.record({
    deliveryId: fc.integer({ min: 1, max: 2 ** 40 }),
    newsletterId: fc.constant(newsletterId),
    subscriberId: fc.option(fc.integer({ min: 1, max: 2 ** 40 }), { nil: null }),
    email: text,
    address: text,
    name: text,
    fields: fc.dictionary(text, text, { maxKeys: 5 }),
    messageId: text,
    attempts: fc.nat({ max: 50 }),
  });

const claimResult = fc.integer({ min: 1, max: 10_000 }).chain((newsletterId) =>
  fc.record({
    newsletterId: fc.constant(newsletterId),
    result: fc.record({
      claimed: fc.array(delivery(newsletterId), { maxLength: 30 }),
      skipped: fc.nat(),
      lastSubscriberId: fc.nat(),
      stillSending: fc.boolean(),
    }),
  }),
);

const write: fc.Arbitrary<OutcomeWrite> = fc.record({
  deliveryId: fc.integer({ min: 1, max: 2 ** 40 }),
  state: fc.constantFrom('sent', 'failed', 'retry', 'unknown'),
  attempts: fc.nat({ max: 50 }),
  nextAttemptAt: fc.option(fc.nat(), { nil: null }),
  smtpReply: fc.option(text, { nil: null }),
  queueId: fc.option(text, { nil: null }),
  suppressAddress: fc.option(fc.record({ address: text, reason: text }), { nil: null }),
});

describe('the ledger thread messages', () => {
  it('a claim comes back equal, deliveries in claim order', () => {
    fc.assert(
      fc.property(claimResult, ({ newsletterId, result }) => {
        const back: ClaimResult = unpackClaim(clone(packClaim(result, newsletterId)));
        expect(back).toEqual(result);
      }),
      { numRuns: 300 },
    );
  });

  it('outcome writes come back equal, in the order given', () => {
    fc.assert(
      fc.property(fc.array(write, { maxLength: 30 }), (writes) => {
        expect(unpackWrites(clone(packWrites(writes)))).toEqual(writes);
      }),
      { numRuns: 300 },
    );
  });
});
