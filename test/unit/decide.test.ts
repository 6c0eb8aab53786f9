import { describe, expect, it } from 'vitest';
import { decideWrite } from '../../src/domain/decide.js';
import { classifySmtpFailure } from '../../src/domain/outcome.js';
import type { ClaimedDelivery, SendOutcome } from '../../src/domain/types.js';

const NOW = Date.UTC(2026, 11, 1, 9, 0, 0);
const MINUTE = 60_000;
const SCHEDULE = [1 * MINUTE, 5 * MINUTE, 30 * MINUTE];

function delivery(attempts = 0): ClaimedDelivery {
  return {
    deliveryId: 42,
    newsletterId: 7,
    subscriberId: 3,
    email: 'Ann@example.net',
    address: 'ann@example.net',
    name: 'Ann',
    fields: {},
    messageId: '<n7.abc@example.org>',
    attempts,
  };
}

/** What decideWrite takes: a fatal outcome stops the run and never reaches it. */
type Decidable = Exclude<SendOutcome, { kind: 'fatal' | 'withdrawn' }>;

const retry = (reply = '451 4.7.1 try later'): Decidable => ({
  kind: 'retry',
  reply,
  throttled: false,
  unreachable: false,
});

describe('decideWrite: one outcome, one ledger write', () => {
  it('sent: the reply and the queue id, no next attempt', () => {
    expect(
      decideWrite(
        delivery(),
        { kind: 'sent', reply: '250 2.0.0 Ok: queued as ABC', queueId: 'ABC' },
        SCHEDULE,
        NOW,
      ),
    ).toEqual({
      deliveryId: 42,
      state: 'sent',
      attempts: 1,
      smtpReply: '250 2.0.0 Ok: queued as ABC',
      queueId: 'ABC',
      nextAttemptAt: null,
      suppressAddress: null,
    });
  });

  it('failed without suppression: the reply is kept, the address is not suppressed', () => {
    expect(
      decideWrite(delivery(), { kind: 'failed', reply: '554 5.7.1 spam', suppress: false }, SCHEDULE, NOW),
    ).toMatchObject({ state: 'failed', attempts: 1, smtpReply: '554 5.7.1 spam', suppressAddress: null });
  });

  it('failed with suppression: the normalised address is suppressed with the reply as reason', () => {
    expect(
      decideWrite(
        delivery(),
        { kind: 'failed', reply: '550 5.1.1 no such user', suppress: true },
        SCHEDULE,
        NOW,
      ),
    ).toMatchObject({
      state: 'failed',
      suppressAddress: { address: 'ann@example.net', reason: '550 5.1.1 no such user' },
    });
  });

  it('unknown: recorded as unknown, never as a retry', () => {
    expect(
      decideWrite(delivery(2), { kind: 'unknown', reply: 'connection closed after DATA' }, SCHEDULE, NOW),
    ).toMatchObject({
      state: 'unknown',
      attempts: 3,
      nextAttemptAt: null,
      smtpReply: 'connection closed after DATA',
    });
  });

  it('counts attempts from what the row had', () => {
    expect(
      decideWrite(delivery(4), { kind: 'sent', reply: '250 ok', queueId: null }, SCHEDULE, NOW).attempts,
    ).toBe(5);
  });
});

describe('decideWrite: the retry schedule', () => {
  it('waits each step in turn, then fails after the last with the last reply', () => {
    const writes = [0, 1, 2, 3].map((attempts) => decideWrite(delivery(attempts), retry(), SCHEDULE, NOW));
    expect(writes.map((w) => [w.state, w.attempts, w.nextAttemptAt])).toEqual([
      ['retry', 1, NOW + 1 * MINUTE],
      ['retry', 2, NOW + 5 * MINUTE],
      ['retry', 3, NOW + 30 * MINUTE],
      ['failed', 4, null],
    ]);
    expect(writes[0]?.smtpReply).toBe('451 4.7.1 try later');
    expect(writes[3]?.smtpReply).toBe('gave up after 4 attempts; last reply: 451 4.7.1 try later');
    expect(writes[3]?.suppressAddress).toBeNull();
  });

  it('a one-step schedule retries once; an empty one fails at once', () => {
    expect(decideWrite(delivery(0), retry(), [0], NOW)).toMatchObject({ state: 'retry', nextAttemptAt: NOW });
    expect(decideWrite(delivery(1), retry(), [0], NOW)).toMatchObject({ state: 'failed' });
    expect(decideWrite(delivery(0), retry(), [], NOW)).toMatchObject({ state: 'failed', attempts: 1 });
  });

  it('a throttled or unreachable retry follows the same schedule', () => {
    const throttled: Decidable = {
      kind: 'retry',
      reply: '421 slow down',
      throttled: true,
      unreachable: false,
    };
    const unreachable: Decidable = {
      kind: 'retry',
      reply: 'ECONNREFUSED',
      throttled: false,
      unreachable: true,
    };
    expect(decideWrite(delivery(1), throttled, SCHEDULE, NOW)).toMatchObject({
      state: 'retry',
      nextAttemptAt: NOW + 5 * MINUTE,
    });
    expect(decideWrite(delivery(0), unreachable, SCHEDULE, NOW)).toMatchObject({
      state: 'retry',
      nextAttemptAt: NOW + MINUTE,
    });
  });
});

describe('from an SMTP reply to a ledger write', () => {
  const decide = (failure: Parameters<typeof classifySmtpFailure>[0], attempts = 0) => {
    const outcome = classifySmtpFailure(failure, 'before-data');
    if (outcome.kind === 'fatal') throw new Error(`unexpected fatal: ${outcome.reply}`);
    return decideWrite(delivery(attempts), outcome, SCHEDULE, NOW);
  };

  it('550 5.1.1 at RCPT TO: failed, and the address suppressed', () => {
    const write = decide({
      responseCode: 550,
      response: '550 5.1.1 <ann@example.net>: user unknown',
      command: 'RCPT TO',
    });
    expect(write.state).toBe('failed');
    expect(write.smtpReply).toContain('550 5.1.1');
    expect(write.suppressAddress).toEqual({ address: 'ann@example.net', reason: write.smtpReply });
  });

  it('any 5.1.x (bad destination mailbox) suppresses; 5.2.2 (mailbox full) does not', () => {
    expect(
      decide({
        responseCode: 550,
        response: '550 5.1.10 Recipient address rejected: null MX',
        command: 'RCPT TO',
      }).suppressAddress,
    ).not.toBeNull();
    const full = decide({ responseCode: 552, response: '552 5.2.2 mailbox full', command: 'RCPT TO' });
    expect(full).toMatchObject({ state: 'failed', suppressAddress: null });
  });

  it('a 4xx at RCPT TO: retry on the schedule, then failed', () => {
    const failure = { responseCode: 450, response: '450 4.2.0 greylisted', command: 'RCPT TO' };
    expect(decide(failure, 0)).toMatchObject({ state: 'retry', nextAttemptAt: NOW + MINUTE });
    expect(decide(failure, 3)).toMatchObject({ state: 'failed', suppressAddress: null });
  });
});
