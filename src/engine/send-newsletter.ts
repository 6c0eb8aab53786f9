/**
 * Step 9 of a run for one `sending` newsletter: renew the lease, reserve from the hourly quota,
 * claim a batch, send it (send-batch.ts), repeat until nobody is left to claim or the run must
 * stop; then ask the ledger whether the newsletter is complete (step 10).
 *
 * Two batches overlap. Batch k+1 is claimed as soon as batch k-1 is recorded, while batch k is
 * still being handed over, and starts once every message of k is handed over, while k's last
 * messages are still on the wire: the connections never wait for a claim or its commit. So at
 * most two batches are claimed and not recorded at any moment (2 × the batch size `unknown`
 * after a crash, at most; the size: batch-size.ts). A budget or a used-up quota found by the
 * claim of k+1 still lets k go out in full (it was counted against them); any other stop puts
 * back what is not handed over.
 * The first batch of each newsletter in a run goes alone, recorded before the second is claimed:
 * a server that refuses the first messages costs one batch put back, as it always did. Before the
 * loop ends, for whatever reason (nobody left, cancelled, stopped, an error), every batch in
 * flight is waited for: the run never ends with an outcome it could still have recorded.
 *
 * Not done, measured: writing batch k-1's outcomes in the transaction that claims batch k+1 (one
 * commit per batch instead of two) made no difference beyond the noise on either database
 * (bench/NOTES.md, issue 17, session 5).
 *
 * The claim is one hop from here: `claimWithinQuota` (quota.ts) → `Store.claimBatch` (store.ts).
 */
import { domainOf } from '../domain/message-id.js';
import type { Millis, Newsletter } from '../domain/types.js';
import type { RenderModule, SendDueDeps } from './deps.js';
import { BatchSizer } from './batch-size.js';
import { claimWithinQuota } from './quota.js';
import type { NewsletterReport } from './result.js';
import { type BatchContext, type BatchInFlight, type NewsletterSending, startBatch } from './send-batch.js';
import { SendSlots } from './send-slots.js';

/** What is left of `--max-messages` and when `--max-seconds` runs out, for the whole run. */
export interface Budget {
  messages: number | null;
  deadline: Millis | null;
}

/** What sending needs beside the newsletter: the same for every newsletter of the run. */
export interface SendingRun extends BatchContext {
  render: RenderModule;
  budget: Budget;
}

export async function sendNewsletter(run: SendingRun, newsletter: Newsletter): Promise<NewsletterReport> {
  const { deps, lease, runId, budget, result } = run;
  const { store, options } = deps;
  const body = newsletter.body;
  if (!body) throw new Error(`newsletter ${newsletter.id} is sending without a stored body`);
  const report: NewsletterReport = { id: newsletter.id, subject: newsletter.subject, result: 'continuing' };
  const personalise = run.render.preparePersonaliser(body, {
    newsletterId: newsletter.id,
    baseUrl: options.baseUrl ?? '',
    secret: options.secret ?? '',
    listNames: newsletter.lists,
    replyTo: options.replyTo,
    returnPath: options.returnPath,
  });
  const fromDomain = domainOf(body.from);
  const sending: NewsletterSending = {
    newsletterId: newsletter.id,
    personalise,
    slots: new SendSlots(run.transport.maxInFlight ?? options.connections),
    serverSaidStop: new AbortController(),
  };
  const sizer = new BatchSizer(options.batchSize);
  // The batch whose messages are on the wire, and the one before it, until they are recorded.
  let older: BatchInFlight | null = null;
  let newer: BatchInFlight | null = null;
  const settleAll = async (): Promise<void> => {
    const pending = [older?.settled, newer?.settled].filter((p) => p !== undefined);
    older = newer = null;
    // Both are waited for even if one fails; the first failure is the run's.
    const results = await Promise.allSettled(pending);
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  };
  let after = 0;
  let overlapping = false;
  try {
    for (;;) {
      checkBudget(deps, budget);
      if (deps.stop.stopped) break;
      // Batch k-1 (`older`) recorded before batch k+1 is claimed: two batches unrecorded at most.
      // Batch k (`newer`) may still be handing over: the claim (and its fsync) overlaps it.
      if (older) {
        await older.settled;
        sizer.recordedBatch(older.size, deps.now());
        older = null;
      }
      if (!(await lease.renewIfDue())) break;
      const size = sizer.next();
      const limit = budget.messages === null ? size : Math.min(size, budget.messages);
      // Reserves from the hourly quota first, when one is set; used up → stop 'quota', claim nothing.
      const claim = await claimWithinQuota(
        { store, stop: deps.stop, events: deps.events, now: deps.now, quota: options.quota },
        {
          newsletterId: newsletter.id,
          runId,
          limit,
          now: deps.now(),
          afterSubscriberId: after,
          messageIds: { secret: options.secret, fromDomain },
        },
      );
      if (!claim.stillSending) {
        await settleAll();
        report.result = 'cancelled';
        return report;
      }
      after = claim.lastSubscriberId;
      result.counts.skipped += claim.skipped;
      if (claim.claimed.length === 0 && claim.skipped === 0) {
        // Nobody left to claim: the ledger is complete once what is in flight is recorded.
        await settleAll();
        if (await store.completeIfDone(newsletter.id, deps.now())) {
          report.result = 'sent';
          deps.events({ type: 'newsletter-sent', newsletterId: newsletter.id });
        }
        return report;
      }
      await deps.at?.('after-claim');
      deps.events({
        type: 'batch-claimed',
        newsletterId: newsletter.id,
        claimed: claim.claimed.length,
        skipped: claim.skipped,
      });
      if (budget.messages !== null) budget.messages -= claim.claimed.length;
      // Messages leave in claim order: this batch starts once the one before is all handed over.
      if (newer) await newer.handedOver;
      const batch = startBatch(run, sending, claim.claimed, newer?.settled ?? Promise.resolve());
      // A failure surfaces where it is awaited (settleAll, or the next claim's wait); until then
      // it must not count as unhandled.
      batch.settled.catch(() => undefined);
      older = newer;
      newer = batch;
      if (!overlapping) {
        // The first batch goes alone: until the server has taken one whole batch, nothing is
        // claimed ahead (a server that refuses, throttles or cannot be reached leaves one batch
        // to put back, not two). From the second on, batches overlap.
        await batch.settled;
        sizer.recordedBatch(batch.size, deps.now());
        newer = null;
        overlapping = true;
      }
    }
    await settleAll();
    return report;
  } catch (error) {
    // Whatever else went wrong, the batches in flight finish and record what they can first.
    await settleAll().catch(() => undefined);
    throw error;
  }
}

function checkBudget(deps: SendDueDeps, budget: Budget): void {
  if (budget.messages !== null && budget.messages <= 0) deps.stop.stop('budget', 'reached --max-messages');
  if (budget.deadline !== null && deps.now() >= budget.deadline)
    deps.stop.stop('budget', 'reached --max-seconds');
}
