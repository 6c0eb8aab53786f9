/**
 * From a transport's outcome to the ledger row's next state (DESIGN's SMTP outcome table).
 * Pure: the engine calls it, the store writes the result fenced by the run id.
 */
import type { OutcomeWrite } from './ledger.js';
import type { ClaimedDelivery, Millis, SendOutcome } from './types.js';

export function decideWrite(
  delivery: ClaimedDelivery,
  outcome: Exclude<SendOutcome, { kind: 'fatal' | 'withdrawn' }>,
  retryAfter: readonly number[],
  now: Millis,
): OutcomeWrite {
  const attempts = delivery.attempts + 1;
  const base = {
    deliveryId: delivery.deliveryId,
    attempts,
    queueId: null,
    nextAttemptAt: null,
    suppressAddress: null,
  };
  switch (outcome.kind) {
    case 'sent':
      return { ...base, state: 'sent', smtpReply: outcome.reply, queueId: outcome.queueId };
    case 'failed':
      return {
        ...base,
        state: 'failed',
        smtpReply: outcome.reply,
        suppressAddress: outcome.suppress ? { address: delivery.address, reason: outcome.reply } : null,
      };
    case 'unknown':
      return { ...base, state: 'unknown', smtpReply: outcome.reply };
    case 'retry': {
      // attempts counts the tries made so far; step N-1 is the wait after the Nth failure.
      const wait = retryAfter[attempts - 1];
      if (wait === undefined) {
        return {
          ...base,
          state: 'failed',
          smtpReply: `gave up after ${attempts} attempts; last reply: ${outcome.reply}`,
        };
      }
      return { ...base, state: 'retry', smtpReply: outcome.reply, nextAttemptAt: now + wait };
    }
  }
}
