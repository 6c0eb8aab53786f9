/**
 * Sends one claimed batch and records every outcome (step 9 of a run: send, then record).
 *
 * A batch has two moments (`BatchInFlight`). `handedOver`: every message was given to the
 * transport or set aside; the next batch (claimed meanwhile) may start, while this one's last
 * messages are still on the wire, so the SMTP pipeline never runs dry between batches.
 * `settled`: every outcome is known and recorded, in one fenced write, after the batch before it
 * was recorded (so writes go in claim order, one at a time). send-newsletter.ts claims batch k+2
 * only once batch k is settled: at most two batches are claimed and not recorded at any moment,
 * which is the `unknown` a crash can leave (README, "What a crash leaves").
 *
 * Up to `transport.maxInFlight` messages are in flight (`SendSlots`, shared by the two batches),
 * paced at the configured rate. The lease check: a message is handed to the transport only while
 * this run's lease is known to be valid (`lease.validFor`), checked right before the hand-over,
 * after any wait for the rate. The hand-over: `transport.send`, after the row is remembered in
 * `unsettled.handedOver`. Once the run must stop, the rest of the batch goes back to `retry`
 * untouched: it was never sent, so it is not `unknown`.
 */
import { decideWrite } from '../domain/decide.js';
import { tallyAttempts } from '../domain/failure-alarm.js';
import type { OutcomeWrite } from '../domain/ledger.js';
import type { RateLimiter } from '../domain/rate-limiter.js';
import type { ClaimedDelivery, SendOutcome } from '../domain/types.js';
import type { SendDueDeps } from './deps.js';
import type { LeaseKeeper } from './lease-keeper.js';
import type { Personaliser, SendOptions, Transport } from './ports.js';
import type { SendDueResult } from './result.js';
import type { SendSlots } from './send-slots.js';
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

/** What the batches of one newsletter share. */
export interface NewsletterSending {
  newsletterId: number;
  personalise: Personaliser;
  slots: SendSlots;
  /**
   * Aborted when a reply stops the run: messages still waiting for a connection come back
   * `withdrawn`, so a server that said "slow down" gets nothing more from this run.
   */
  serverSaidStop: AbortController;
}

export interface BatchInFlight {
  /** Recipients claimed in it: what the batch size (batch-size.ts) learns from once it settles. */
  size: number;
  /** Every message handed over or set aside. Never rejects. */
  handedOver: Promise<void>;
  /** Every outcome recorded (or, if that failed, left in `unsettled` for endRun). */
  settled: Promise<void>;
}

export function startBatch(
  context: BatchContext,
  sending: NewsletterSending,
  deliveries: readonly ClaimedDelivery[],
  previous: Promise<void>,
): BatchInFlight {
  const writes: OutcomeWrite[] = [];
  const notSent: number[] = [];
  const sends: Promise<void>[] = [];
  const handedOver = handOver(context, sending, deliveries, { writes, notSent, sends });
  const settled = handedOver.then(async (failure) => {
    await Promise.all(sends);
    if (failure) throw failure.error;
    await record(context, sending.newsletterId, writes, notSent, previous);
  });
  return { size: deliveries.length, handedOver: handedOver.then(() => undefined), settled };
}

interface BatchState {
  writes: OutcomeWrite[];
  notSent: number[];
  sends: Promise<void>[];
}

/** Hands every message over in claim order; a thrown error (a failpoint hook's) is returned. */
async function handOver(
  context: BatchContext,
  sending: NewsletterSending,
  deliveries: readonly ClaimedDelivery[],
  state: BatchState,
): Promise<{ error: unknown } | null> {
  const { deps, transport, limiter, lease, unsettled } = context;
  const { personalise, slots, serverSaidStop } = sending;
  // One options object for the batch: the signal is the same for every message.
  const sendOptions = { signal: serverSaidStop.signal };
  const stopOnReply = (reason: 'fatal' | 'throttled' | 'unreachable', reply: string): void => {
    deps.stop.stop(reason, reply);
    serverSaidStop.abort();
  };
  const settleOne = (delivery: ClaimedDelivery, outcome: SendOutcome): void => {
    slots.release();
    if (outcome.kind === 'fatal' || outcome.kind === 'withdrawn') {
      // Refused before any message data (authentication, configuration), or withdrawn because
      // another message's reply stopped the run before this one was tried: never handed over.
      if (outcome.kind === 'fatal') stopOnReply('fatal', outcome.reply);
      unsettled.handedOver.delete(delivery.deliveryId);
      state.notSent.push(delivery.deliveryId);
      return;
    }
    if (outcome.kind === 'retry' && outcome.throttled) stopOnReply('throttled', outcome.reply);
    if (outcome.kind === 'retry' && outcome.unreachable) stopOnReply('unreachable', outcome.reply);
    state.writes.push(decideWrite(delivery, outcome, deps.options.retryAfter, deps.now()));
  };
  try {
    for (const delivery of deliveries) {
      const slot = slots.take();
      if (slot) await slot;
      // A budget or quota stop ends the claiming only: what is claimed still goes (stop.ts).
      if (!deps.stop.handOverStopped) {
        const wait = limiter.reserve(deps.now());
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      }
      if (deps.at) await deps.at('before-hand-over');
      // Checked after the waits, right before the hand-over: a run stopped or paused past its
      // lease while it waited must not send what another run may already have taken over.
      if (!deps.stop.handOverStopped && !lease.validFor())
        deps.stop.stop('lease-lost', 'the lease ran out before this message could be sent');
      if (deps.stop.handOverStopped) {
        slots.release();
        state.notSent.push(delivery.deliveryId);
        continue;
      }
      unsettled.handedOver.add(delivery.deliveryId);
      state.sends.push(sendOne(transport, personalise, delivery, sendOptions, settleOne));
    }
    return null;
  } catch (error) {
    // Whatever was not handed over stays `claimed` by this run: endRun sends it back to `retry`.
    return { error };
  }
}

/** Step 9's record: the batch's outcomes in one fenced write, after the batch before it. */
async function record(
  context: BatchContext,
  newsletterId: number,
  writes: OutcomeWrite[],
  notSent: number[],
  previous: Promise<void>,
): Promise<void> {
  const { deps, unsettled, runId, result } = context;
  // Known from here on: if a write fails for good, endRun writes them.
  unsettled.outcomes.push(...writes);
  await previous;
  await deps.at?.('after-send-before-record');
  const recorded = await deps.store.recordOutcomes(runId, writes, deps.now());
  const mine = new Set(writes);
  unsettled.outcomes = unsettled.outcomes.filter((write) => !mine.has(write));
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

/**
 * Personalises and hands over one message; `settle` gets its outcome, and the promise resolves
 * once it has. One `then` per message rather than an async function awaiting another (each hop
 * costs the main thread per message, issue 17).
 */
function sendOne(
  transport: Transport,
  personalise: Personaliser,
  delivery: ClaimedDelivery,
  options: SendOptions,
  settle: (delivery: ClaimedDelivery, outcome: SendOutcome) => void,
): Promise<void> {
  let sent: Promise<SendOutcome>;
  try {
    sent = transport.send(personalise(delivery), options);
  } catch (error) {
    sent = Promise.reject(error);
  }
  return sent.then(
    (outcome) => settle(delivery, outcome),
    // A transport must classify, not throw; if one throws anyway we cannot know how far it got.
    (error: unknown) => settle(delivery, transportError(error)),
  );
}

function transportError(error: unknown): SendOutcome {
  return { kind: 'unknown', reply: `transport error: ${(error as Error).message}` };
}
