/**
 * What the send path's batches look like on their way to and from the ledger's own thread
 * (ledger-thread.ts, ledger-worker.ts): flat arrays of values instead of arrays of objects.
 *
 * A message between threads is a structured clone: every object is written property by property,
 * its keys included, and read back into a new object on the other side. A claim's twenty
 * deliveries of nine fields each and a record's twenty writes of seven cost more to clone as
 * objects than the values themselves (issue 17, bench/NOTES.md "Issue 17 (session 7)"). The
 * values and their order are all that crosses; each side builds the objects it works with, and
 * what comes out is equal to what went in (test/unit/ledger-messages.test.ts).
 */
import type { OutcomeWrite } from '../../domain/ledger.js';
import type { ClaimedDelivery } from '../../domain/types.js';
import type { ClaimResult } from '../../engine/store.js';

/** A ClaimResult as it crosses: the deliveries' values, DELIVERY_VALUES per delivery, in claim order. */
export interface PackedClaim {
  skipped: number;
  lastSubscriberId: number;
  stillSending: boolean;
  newsletterId: number;
  deliveries: unknown[];
}

const DELIVERY_VALUES = 8;
const WRITE_VALUES = 7;

export function packClaim(result: ClaimResult, newsletterId: number): PackedClaim {
  const deliveries: unknown[] = new Array(result.claimed.length * DELIVERY_VALUES);
  let at = 0;
  // Every delivery of a claim is of the newsletter it was asked for (claim.ts): sent once.
  for (const d of result.claimed) {
    deliveries[at++] = d.deliveryId;
    deliveries[at++] = d.subscriberId;
    deliveries[at++] = d.email;
    deliveries[at++] = d.address;
    deliveries[at++] = d.name;
    deliveries[at++] = d.fields;
    deliveries[at++] = d.messageId;
    deliveries[at++] = d.attempts;
  }
  const { skipped, lastSubscriberId, stillSending } = result;
  return { skipped, lastSubscriberId, stillSending, newsletterId, deliveries };
}

export function unpackClaim(packed: PackedClaim): ClaimResult {
  const { deliveries: v, newsletterId } = packed;
  const claimed: ClaimedDelivery[] = new Array(v.length / DELIVERY_VALUES);
  for (let i = 0, at = 0; at < v.length; i++, at += DELIVERY_VALUES) {
    claimed[i] = {
      deliveryId: v[at] as number,
      newsletterId,
      subscriberId: v[at + 1] as number | null,
      email: v[at + 2] as string,
      address: v[at + 3] as string,
      name: v[at + 4] as string,
      fields: v[at + 5] as Record<string, string>,
      messageId: v[at + 6] as string,
      attempts: v[at + 7] as number,
    };
  }
  const { skipped, lastSubscriberId, stillSending } = packed;
  return { claimed, skipped, lastSubscriberId, stillSending };
}

/** Outcome writes as they cross: WRITE_VALUES values per write, in the order given. */
export function packWrites(writes: readonly OutcomeWrite[]): unknown[] {
  const values: unknown[] = new Array(writes.length * WRITE_VALUES);
  let at = 0;
  for (const w of writes) {
    values[at++] = w.deliveryId;
    values[at++] = w.state;
    values[at++] = w.attempts;
    values[at++] = w.nextAttemptAt;
    values[at++] = w.smtpReply;
    values[at++] = w.queueId;
    values[at++] = w.suppressAddress;
  }
  return values;
}

export function unpackWrites(values: readonly unknown[]): OutcomeWrite[] {
  const writes: OutcomeWrite[] = new Array(values.length / WRITE_VALUES);
  for (let i = 0, at = 0; at < values.length; i++, at += WRITE_VALUES) {
    writes[i] = {
      deliveryId: values[at] as number,
      state: values[at + 1] as OutcomeWrite['state'],
      attempts: values[at + 2] as number,
      nextAttemptAt: values[at + 3] as OutcomeWrite['nextAttemptAt'],
      smtpReply: values[at + 4] as string | null,
      queueId: values[at + 5] as string | null,
      suppressAddress: values[at + 6] as OutcomeWrite['suppressAddress'],
    };
  }
  return writes;
}
