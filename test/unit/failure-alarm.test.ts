/**
 * The rule behind exit 8 for failed deliveries (README, "Exit codes"): suppressed hard bounces are
 * list hygiene; a failure rate above 5 % for other reasons, or a whole batch failing, needs a person.
 */
import { describe, expect, it } from 'vitest';
import {
  type AttemptTally,
  FAILURE_RATE_LIMIT,
  failureAlarm,
  tallyAttempts,
  WHOLE_BATCH_MINIMUM,
} from '../../src/domain/failure-alarm.js';
import type { OutcomeWrite } from '../../src/domain/ledger.js';

const tally = (attempts: number, failed = 0, hardBounces = 0): AttemptTally => ({
  attempts,
  failed,
  hardBounces,
});

function write(state: OutcomeWrite['state'], suppressed = false): OutcomeWrite {
  return {
    deliveryId: 1,
    state,
    attempts: 1,
    nextAttemptAt: null,
    smtpReply: null,
    queueId: null,
    suppressAddress: suppressed ? { address: 'gone@example.net', reason: '550 5.1.1 user unknown' } : null,
  };
}

describe('failureAlarm', () => {
  it('is quiet when nothing failed, or nothing was attempted', () => {
    expect(failureAlarm(tally(0), [])).toBeNull();
    expect(failureAlarm(tally(40), [tally(20), tally(20)])).toBeNull();
  });

  it('one suppressed 5.1.1 among a few is hygiene, whatever its share of the run', () => {
    expect(failureAlarm(tally(2, 1, 1), [tally(2, 1, 1)])).toBeNull();
    // Half the run, but hard bounces never count towards the rate.
    expect(failureAlarm(tally(8, 4, 4), [tally(4, 2, 2), tally(4, 2, 2)])).toBeNull();
  });

  it('more than 5 % of the attempts failing for other reasons raises it', () => {
    expect(FAILURE_RATE_LIMIT).toBe(0.05);
    expect(failureAlarm(tally(100, 5), [tally(100, 5)])).toBeNull();
    expect(failureAlarm(tally(100, 6), [tally(100, 6)])).toEqual({
      kind: 'failure-rate',
      attempts: 100,
      failed: 6,
      percent: 6,
    });
    // Hard bounces are left out of the rate, not out of the attempts.
    expect(failureAlarm(tally(100, 9, 4), [tally(100, 9, 4)])).toBeNull();
    expect(failureAlarm(tally(100, 10, 4), [tally(100, 10, 4)])).toMatchObject({ failed: 6 });
    // A small run: one policy refusal out of ten is 10 %.
    expect(failureAlarm(tally(10, 1), [tally(10, 1)])).toMatchObject({ kind: 'failure-rate', percent: 10 });
  });

  it('a whole batch failing raises it, hard bounces included, from WHOLE_BATCH_MINIMUM attempts', () => {
    const n = WHOLE_BATCH_MINIMUM;
    const batches = [tally(20), tally(20), tally(n, n, n)];
    expect(failureAlarm(tally(40 + n, n, n), batches)).toEqual({ kind: 'whole-batch', attempts: n });
    // The last few recipients of a small list, all gone: still hygiene.
    expect(failureAlarm(tally(20 + n - 1, n - 1, n - 1), [tally(20), tally(n - 1, n - 1, n - 1)])).toBeNull();
  });
});

describe('tallyAttempts', () => {
  it('counts every outcome written, the failed ones, and those that suppressed their address', () => {
    expect(
      tallyAttempts([
        write('sent'),
        write('retry'),
        write('unknown'),
        write('failed'),
        write('failed', true),
        write('failed', true),
      ]),
    ).toEqual({ attempts: 6, failed: 3, hardBounces: 2 });
    expect(tallyAttempts([])).toEqual({ attempts: 0, failed: 0, hardBounces: 0 });
  });
});
