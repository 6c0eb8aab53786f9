/** Which non-final states no run will settle, and the command shown for each (domain/unsettled.ts). */
import { describe, expect, it } from 'vitest';
import type { DeliveryCounts, Newsletter } from '../../src/domain/types.js';
import { describeUnsettled, findUnsettled } from '../../src/domain/unsettled.js';
import { newsletterFixture } from '../helpers/store-fixtures.js';

const counts = (partial: Partial<DeliveryCounts> = {}): DeliveryCounts => ({
  audience: 10,
  pending: 0,
  claimed: 0,
  sent: 10,
  failed: 0,
  retry: 0,
  unknown: 0,
  skipped: 0,
  ...partial,
});

const state = (newsletter: Partial<Newsletter>, partial: Partial<DeliveryCounts> = {}, stranded = 0) => ({
  newsletter: newsletterFixture({ id: 1, ...newsletter }),
  counts: counts(partial),
  stranded,
});

describe('findUnsettled', () => {
  it('finds nothing in a healthy ledger', () => {
    expect(
      findUnsettled(
        [
          state({ id: 1, status: 'sent' }),
          state({ id: 2, status: 'sending' }, { pending: 3, sent: 7 }),
          state({ id: 3, status: 'cancelled' }, { sent: 4, skipped: 6 }),
        ],
        0,
      ),
    ).toEqual([]);
  });

  it('stranded rows: reconcile with either action; on a cancelled newsletter only --mark-sent', () => {
    const found = findUnsettled(
      [
        state({ id: 4, status: 'sent' }, { sent: 9, claimed: 1 }, 1),
        state({ id: 5, status: 'cancelled' }, { sent: 8, claimed: 2 }, 2),
      ],
      1,
    );
    expect(found).toEqual([
      expect.objectContaining({
        kind: 'stranded',
        newsletterId: 4,
        count: 1,
        message: expect.stringContaining('newsletter 4: 1 delivery claimed by a run that has ended'),
        command: 'newsletter reconcile 4 --mark-sent|--resend [EMAIL…]',
      }),
      expect.objectContaining({
        kind: 'stranded',
        newsletterId: 5,
        count: 2,
        command: 'newsletter reconcile 5 --mark-sent [EMAIL…]',
      }),
    ]);
    expect(describeUnsettled(found[0]!)).toMatch(
      /; settle with `newsletter reconcile 4 --mark-sent\|--resend/,
    );
  });

  it('retry rows of a cancelled newsletter: --mark-sent, naming the delivered ones when some are undecided', () => {
    const found = findUnsettled(
      [
        state({ id: 6, status: 'cancelled' }, { sent: 8, retry: 2 }),
        state({ id: 7, status: 'cancelled' }, { sent: 7, retry: 2, unknown: 1 }),
      ],
      0,
    );
    expect(found.map((u) => [u.kind, u.newsletterId, u.count, u.command])).toEqual([
      ['cancelled-retry', 6, 2, 'newsletter reconcile 6 --mark-sent'],
      ['cancelled-retry', 7, 2, 'newsletter reconcile 7 --mark-sent EMAIL…'],
    ]);
  });

  it('a sending newsletter with no open run and nothing to claim: send-due completes it, unless stranded rows hold it', () => {
    const states = [
      state({ id: 8, status: 'sending' }, { sent: 10 }),
      state({ id: 9, status: 'sending' }, { sent: 8, claimed: 2 }, 2),
      state({ id: 10, status: 'sending' }, { sent: 8, retry: 2 }),
      state({ id: 11, status: 'sending' }, { sent: 8, pending: 2 }),
    ];
    const idle = findUnsettled(states, 0).filter((u) => u.kind === 'sending-idle');
    expect(idle.map((u) => [u.newsletterId, u.count, u.command])).toEqual([
      [8, 0, 'newsletter send-due'],
      [9, 2, 'newsletter reconcile 9 --mark-sent|--resend [EMAIL…]'],
    ]);
    expect(idle[1]?.message).toContain('2 deliveries claimed by an ended run keep it open');
    // An open run (whatever its lease) is still on it: not shown.
    expect(findUnsettled(states, 1).filter((u) => u.kind === 'sending-idle')).toEqual([]);
  });
});
