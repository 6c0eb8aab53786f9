/**
 * Step 9 of a run for one `sending` newsletter: renew the lease, reserve from the hourly quota,
 * claim a batch, send it (send-batch.ts), repeat until nobody is left to claim or the run must
 * stop; then ask the ledger whether the newsletter is complete (step 10).
 *
 * The claim is one hop from here: `claimWithinQuota` (quota.ts) → `Store.claimBatch` (store.ts).
 */
import { domainOf, messageIdFor } from '../domain/message-id.js';
import type { Millis, Newsletter } from '../domain/types.js';
import type { RenderModule, SendDueDeps } from './deps.js';
import { claimWithinQuota } from './quota.js';
import type { NewsletterReport } from './result.js';
import { type BatchContext, sendBatch } from './send-batch.js';

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
  let after = 0;
  for (;;) {
    checkBudget(deps, budget);
    if (deps.stop.stopped) return report;
    if (!(await lease.renewIfDue())) return report;
    const limit = budget.messages === null ? options.batchSize : Math.min(options.batchSize, budget.messages);
    // Reserves from the hourly quota first, when one is set; used up → stop 'quota', claim nothing.
    const claim = await claimWithinQuota(
      { store, stop: deps.stop, events: deps.events, now: deps.now, quota: options.quota },
      {
        newsletterId: newsletter.id,
        runId,
        limit,
        now: deps.now(),
        afterSubscriberId: after,
        makeMessageId: (address) => messageIdFor(options.secret, newsletter.id, address, fromDomain),
      },
    );
    if (!claim.stillSending) {
      report.result = 'cancelled';
      return report;
    }
    after = claim.lastSubscriberId;
    result.counts.skipped += claim.skipped;
    if (claim.claimed.length === 0 && claim.skipped === 0) {
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
    await sendBatch(run, { newsletterId: newsletter.id, deliveries: claim.claimed, personalise });
  }
}

function checkBudget(deps: SendDueDeps, budget: Budget): void {
  if (budget.messages !== null && budget.messages <= 0) deps.stop.stop('budget', 'reached --max-messages');
  if (budget.deadline !== null && deps.now() >= budget.deadline)
    deps.stop.stop('budget', 'reached --max-seconds');
}
