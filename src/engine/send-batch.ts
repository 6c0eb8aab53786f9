/**
 * Sends one claimed batch and records every outcome (step 9 of a run: send, then record).
 *
 * Up to `transport.maxInFlight` messages are in flight (three per SMTP connection: the pool
 * pipelines), paced at the configured rate. The lease check: a message is handed to the transport
 * only while this run's lease is known to be valid (`lease.validFor`), checked right before the
 * hand-over, after any wait for the rate. The hand-over: `sendOne`, after the row is remembered in
 * `unsettled.handedOver`. Once the run must stop, the rest of the batch goes back to `retry`
 * untouched: it was never sent, so it is not `unknown`.
 */
import { decideWrite } from '../domain/decide.js';
import { tallyAttempts } from '../domain/failure-alarm.js';
import type { RateLimiter } from '../domain/rate-limiter.js';
import type { ClaimedDelivery, SendOutcome } from '../domain/types.js';
import type { SendDueDeps } from './deps.js';
import type { LeaseKeeper } from './lease-keeper.js';
import type { Personaliser, Transport } from './ports.js';
import type { SendDueResult } from './result.js';
import type { OutcomeWrite } from '../domain/ledger.js';
import type { Unsettled } from './unsettled.js';

/** What sending a batch needs beside the batch: the same for every batch of the run. */
export interface BatchContext {
  deps: SendDueDeps;
  transport: Transport;
  limiter: RateLimiter;
  lease: LeaseKeeper;
  unsettled: Unsettled;
  runId: number;
  result: SendDueResult;
}

export interface Batch {
  newsletterId: number;
  deliveries: readonly ClaimedDelivery[];
  personalise: Personaliser;
}

export async function sendBatch(context: BatchContext, batch: Batch): Promise<void> {
  const { deps, transport, limiter, lease, unsettled, runId, result } = context;
  const { newsletterId, deliveries, personalise } = batch;
  const writes: OutcomeWrite[] = [];
  const notSent: number[] = [];
  let next = 0;
  // Aborted when a reply stops the run: messages still waiting for a connection come back
  // `withdrawn`, so a server that said "slow down" gets nothing more from this run.
  const serverSaidStop = new AbortController();
  const stopOnReply = (reason: 'fatal' | 'throttled' | 'unreachable', reply: string): void => {
    deps.stop.stop(reason, reply);
    serverSaidStop.abort();
  };

  const worker = async (): Promise<void> => {
    for (;;) {
      const delivery = deliveries[next];
      if (!delivery) return;
      next += 1;
      if (!deps.stop.stopped) {
        const wait = limiter.reserve(deps.now());
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      }
      await deps.at?.('before-hand-over');
      // Checked after the wait, right before the hand-over: a run stopped or paused past its lease
      // while it waited must not send what another run may already have taken over.
      if (!deps.stop.stopped && !lease.validFor())
        deps.stop.stop('lease-lost', 'the lease ran out before this message could be sent');
      if (deps.stop.stopped) {
        notSent.push(delivery.deliveryId);
        continue;
      }
      unsettled.handedOver.add(delivery.deliveryId);
      const outcome = await sendOne(transport, personalise, delivery, serverSaidStop.signal);
      if (outcome.kind === 'fatal' || outcome.kind === 'withdrawn') {
        // Refused before any message data (authentication, configuration), or withdrawn because
        // another message's reply stopped the run before this one was tried: never handed over.
        if (outcome.kind === 'fatal') stopOnReply('fatal', outcome.reply);
        unsettled.handedOver.delete(delivery.deliveryId);
        notSent.push(delivery.deliveryId);
        continue;
      }
      if (outcome.kind === 'retry' && outcome.throttled) stopOnReply('throttled', outcome.reply);
      if (outcome.kind === 'retry' && outcome.unreachable) stopOnReply('unreachable', outcome.reply);
      writes.push(decideWrite(delivery, outcome, deps.options.retryAfter, deps.now()));
    }
  };
  // The SMTP pool pipelines (three messages per connection); other transports take one each.
  const inFlight = transport.maxInFlight ?? deps.options.connections;
  const workers = Math.max(1, Math.min(inFlight, deliveries.length));
  await Promise.all(Array.from({ length: workers }, worker));

  await deps.at?.('after-send-before-record');
  // Known from here on: if the write fails for good, endRun writes them.
  unsettled.outcomes = writes;
  const recorded = await deps.store.recordOutcomes(runId, writes, deps.now());
  unsettled.outcomes = [];
  for (const write of writes) unsettled.handedOver.delete(write.deliveryId);
  await deps.at?.('after-record');
  result.refusedWrites += recorded.refused;
  if (recorded.refused > 0)
    deps.stop.stop('lease-lost', `${recorded.refused} outcome writes were refused: another run took over`);
  for (const key of ['sent', 'failed', 'retry', 'unknown', 'skipped'] as const)
    result.counts[key] += recorded.recorded[key];
  // From the writes decided, refused ones included: a refused write stops the run (exit 11) anyway.
  const attempts = tallyAttempts(writes);
  if (attempts.attempts > 0) result.batches.push(attempts);
  result.attempts.attempts += attempts.attempts;
  result.attempts.failed += attempts.failed;
  result.attempts.hardBounces += attempts.hardBounces;
  if (notSent.length > 0) await deps.store.releaseClaims(runId, notSent, deps.now());
  const { sent, failed, retry, unknown } = recorded.recorded;
  deps.events({
    type: 'outcomes-recorded',
    newsletterId,
    sent,
    failed,
    retry,
    unknown,
    hardBounces: attempts.hardBounces,
    refused: recorded.refused,
  });
}

async function sendOne(
  transport: Transport,
  personalise: Personaliser,
  delivery: ClaimedDelivery,
  signal: AbortSignal,
): Promise<SendOutcome> {
  try {
    return await transport.send(personalise(delivery), { signal });
  } catch (error) {
    // A transport must classify, not throw; if one throws anyway we cannot know how far it got.
    return { kind: 'unknown', reply: `transport error: ${(error as Error).message}` };
  }
}
