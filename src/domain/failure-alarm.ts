/**
 * When a run's failed deliveries need a person (exit 8) and when they are list hygiene (exit 0):
 * README, "Exit codes". Pure; the engine tallies, the CLI picks the exit code and the words.
 *
 * A 5.1.x reply (no such user) fails the delivery and suppresses the address in the same write,
 * so the list cleans itself; a send to a real list of any size meets a few every time. Raising
 * the alarm for those would have cron mail after almost every send, and people learn to ignore
 * cron's mail. What says that the relay or the list is broken is how many fail:
 *
 * - more than FAILURE_RATE_LIMIT of the run's attempts failed for any other reason (a policy
 *   refusal, a full mailbox, a retry that gave up): hard bounces are left out of this rate;
 * - or every attempt of a batch failed, hard bounces included: a relay that answers "user
 *   unknown" to everyone would otherwise suppress the whole list in silence. A batch needs
 *   WHOLE_BATCH_MINIMUM attempts for that, so that the last few recipients of a small list, all
 *   gone, are still hygiene; fewer failures of another kind are caught by the rate anyway.
 *
 * `unknown` deliveries and build failures raise the alarm on their own (src/cli/commands/send-due.ts).
 */
import type { OutcomeWrite } from './ledger.js';

/** Outcomes of messages handed to the transport (sent, failed, retry, unknown), in a run or a batch. */
export interface AttemptTally {
  attempts: number;
  failed: number;
  /** Of `failed`, those whose address was suppressed in the same write (a 5.1.x reply). */
  hardBounces: number;
}

/** More than this share of a run's attempts failing for other reasons than hard bounces: exit 8. */
export const FAILURE_RATE_LIMIT = 0.05;

/** A batch with at least this many attempts, all failed (hard bounces included): exit 8. */
export const WHOLE_BATCH_MINIMUM = 5;

export type FailureAlarm =
  | { kind: 'failure-rate'; attempts: number; failed: number; percent: number }
  | { kind: 'whole-batch'; attempts: number };

export function emptyAttemptTally(): AttemptTally {
  return { attempts: 0, failed: 0, hardBounces: 0 };
}

/** What one batch's outcome writes count for the alarm. */
export function tallyAttempts(writes: readonly OutcomeWrite[]): AttemptTally {
  const tally = emptyAttemptTally();
  for (const write of writes) {
    tally.attempts += 1;
    if (write.state !== 'failed') continue;
    tally.failed += 1;
    if (write.suppressAddress !== null) tally.hardBounces += 1;
  }
  return tally;
}

/** Null when the failures (if any) are list hygiene; otherwise the rule that says a person must look. */
export function failureAlarm(run: AttemptTally, batches: readonly AttemptTally[]): FailureAlarm | null {
  const whole = batches.find((b) => b.attempts >= WHOLE_BATCH_MINIMUM && b.failed === b.attempts);
  if (whole) return { kind: 'whole-batch', attempts: whole.attempts };
  const failed = run.failed - run.hardBounces;
  if (run.attempts > 0 && failed / run.attempts > FAILURE_RATE_LIMIT) {
    return {
      kind: 'failure-rate',
      attempts: run.attempts,
      failed,
      percent: Math.round((failed / run.attempts) * 1000) / 10,
    };
  }
  return null;
}
