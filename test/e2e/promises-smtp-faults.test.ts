/**
 * DESIGN's SMTP outcome table against a real SMTP server (issue 3, test 4), through the built CLI:
 *
 * | the server                         | the ledger                                            |
 * | ---------------------------------- | ----------------------------------------------------- |
 * | 450 once                           | retry, then sent by a later attempt                   |
 * | 421 / 454 (throttling)             | retry, the run stops claiming (exit 9), rest pending  |
 * | 550 5.1.1 user unknown             | failed, with the reply, and the address suppressed    |
 * | a cut connection after the data    | unknown, never resent on its own                      |
 * | no reply within the SMTP timeout   | unknown                                               |
 *
 * and `show --json` counts equal what the server saw. Then `reconcile`: `--resend` makes an
 * unknown go out again with the same Message-ID, `--mark-sent` records it as sent.
 */
import { describe, expect, it } from 'vitest';
import type { SinkRule, SmtpSink } from '../helpers/smtp-sink.js';
import { perTest } from '../helpers/workspace.js';

const PARTLY_FAILED = 8;
const TRANSIENT = 9;

const resources = perTest();

/**
 * Adds a fault that the test can switch off later. The sink looks its rules up at every
 * transaction, so retargeting the rule at an address nobody sends to ends it.
 */
function switchable(server: SmtpSink, rule: SinkRule): () => void {
  const live: SinkRule = { ...rule };
  server.addFault(live);
  return () => {
    live.to = 'switched-off@invalid.test';
  };
}

describe('SMTP faults from a real server: outcomes as DESIGN says, counts as the server saw', () => {
  it('450 once: the delivery goes to retry, and the next run sends it', async () => {
    // One connection: the first transaction the sink sees is the first recipient's.
    const sink = await resources.sink();
    const workspace = await resources.workspace({
      recipients: 10,
      transport: sink.url,
      env: { NEWSLETTER_SMTP_CONNECTIONS: '1' },
    });
    const ws = workspace;
    const [first] = ws.addresses as [string];
    sink.addFault({
      to: first,
      nth: 1,
      fault: { kind: 'rejectRcpt', code: 450, text: '4.2.1 mailbox busy' },
    });

    // --max-messages 1: the run claims the first recipient only, gets the 450, and stops.
    expect(await ws.run(['send-due', '--max-messages', '1'])).toMatchObject({
      code: 0,
      stdout: '',
      stderr: '',
    });
    expect(sink.messages).toHaveLength(0);
    const afterFirst = await ws.show();
    expect(afterFirst.status).toBe('sending');
    expect(afterFirst.counts).toMatchObject({ retry: 1, sent: 0, pending: 9 });
    expect(ws.ledger()).toMatchObject([{ address: first, state: 'retry', attempts: 1 }]);
    expect(ws.ledger()[0]?.smtp_reply).toContain('450');

    // NEWSLETTER_RETRY_AFTER=0s: due at once, and claimed before anyone new.
    expect(await ws.run(['send-due'])).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(ws.addresses.filter((address) => sink!.count(address) !== 1)).toEqual([]);
    expect(sink.messages).toHaveLength(10);
    const done = await ws.show();
    expect(done.status).toBe('sent');
    expect(done.counts).toMatchObject({ sent: 10, retry: 0, failed: 0, unknown: 0 });
    expect(ws.ledger().find((row) => row.address === first)).toMatchObject({ state: 'sent', attempts: 2 });
  });

  it('421 and 454 throttle: retry, the run stops claiming (exit 9), the rest stays pending', async () => {
    const sink = await resources.sink();
    const workspace = await resources.workspace({
      recipients: 20,
      transport: sink.url,
      env: { NEWSLETTER_SMTP_CONNECTIONS: '1', NEWSLETTER_BATCH: '5' },
    });
    const ws = workspace;
    const server = sink;
    const address = (i: number) => ws.addresses[i] as string;

    // 421 for the third recipient: two sent, then the run stops; the rest of its batch goes back
    // to retry untouched, nobody else is claimed.
    const off421 = switchable(server, {
      to: address(2),
      fault: { kind: 'rejectRcpt', code: 421, text: '4.7.0 too many messages, slow down' },
    });
    const throttled = await ws.run(['send-due']);
    expect(throttled).toMatchObject({ code: TRANSIENT, stdout: '' });
    // nodemailer turns a 421 on a connection that already carried messages into a plain
    // "connection closed" (it would requeue the message, which we forbid), so the run may report
    // the server as unreachable rather than throttling: either way it stops claiming.
    expect(throttled.stderr).toMatch(/stopped: the SMTP server is (throttling|unreachable)/);
    expect(server.total).toBe(2);
    let shown = await ws.show();
    expect(shown.status).toBe('sending');
    expect(shown.counts).toMatchObject({ sent: 2, retry: 3, pending: 15, failed: 0, unknown: 0, claimed: 0 });
    expect(ws.ledger().find((row) => row.address === address(2))).toMatchObject({ state: 'retry' });
    off421();

    // 454 for the eighth: the three retries and two new ones go out (the first batch goes alone);
    // the next batch (the eighth to the twelfth) stops at its first, and the four behind it go
    // back to retry untouched, with the batch claimed ahead of it (the thirteenth to the
    // seventeenth: src/engine/send-newsletter.ts), never tried either.
    const off454 = switchable(server, {
      to: address(7),
      fault: { kind: 'rejectRcpt', code: 454, text: '4.7.0 temporary failure, try again later' },
    });
    const again = await ws.run(['send-due']);
    expect(again).toMatchObject({ code: TRANSIENT, stdout: '' });
    expect(again.stderr).toContain('stopped: the SMTP server is throttling (454 4.7.0 temporary failure');
    expect(ws.ledger().find((row) => row.address === address(7))?.smtp_reply).toContain('454 4.7.0');
    shown = await ws.show();
    expect(shown.counts.sent).toBe(server.total);
    expect(shown.counts).toMatchObject({ sent: 7, retry: 10, pending: 3, failed: 0, unknown: 0, claimed: 0 });
    const untouched = ws.ledger().filter((row) => row.state === 'retry' && row.attempts === 0);
    expect(untouched.map((row) => row.address).sort()).toEqual(
      [8, 9, 10, 11, 12, 13, 14, 15, 16].map(address).sort(),
    );
    off454();

    expect(await ws.run(['send-due'])).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(ws.addresses.filter((a) => server.count(a) !== 1)).toEqual([]);
    expect(server.messages).toHaveLength(20);
    shown = await ws.show();
    expect(shown.status).toBe('sent');
    expect(shown.counts).toMatchObject({ sent: 20, retry: 0, failed: 0, unknown: 0, pending: 0 });
  });

  it('550 5.1.1 fails and suppresses; a cut after the data and a reply slower than the timeout are unknown, never resent; reconcile settles them', async () => {
    const sink = await resources.sink();
    const workspace = await resources.workspace({
      recipients: 12,
      transport: sink.url,
      env: { NEWSLETTER_SMTP_TIMEOUT: '1s' },
    });
    const ws = workspace;
    const server = sink;
    const [rejected, cut, slow] = [ws.addresses[3], ws.addresses[6], ws.addresses[9]] as [
      string,
      string,
      string,
    ];
    server.addFault({
      to: rejected,
      fault: {
        kind: 'rejectRcpt',
        code: 550,
        text: `5.1.1 <${rejected}>: Recipient address rejected: user unknown`,
      },
    });
    const offCut = switchable(server, { to: cut, fault: { kind: 'cutAfterData' } });
    server.addFault({ to: slow, fault: { kind: 'hangAfterData' } });

    const first = await ws.run(['send-due']);
    expect(first).toMatchObject({ code: PARTLY_FAILED, stdout: '' });
    expect(first.stderr).toContain('newsletter reconcile');
    expect((await ws.runs())[0]?.counts).toEqual({ sent: 9, failed: 1, retry: 0, unknown: 2, skipped: 0 });

    // The counts are what the server saw.
    const atServer = (disposition: string) => server.messages.filter((m) => m.disposition === disposition);
    const shown = await ws.show();
    expect(shown.status).toBe('sent');
    expect(shown.counts).toMatchObject({
      audience: 12,
      sent: 9,
      failed: 1,
      unknown: 2,
      retry: 0,
      pending: 0,
    });
    expect(shown.counts.sent).toBe(atServer('accepted').length);
    expect(shown.counts.unknown).toBe(atServer('cut').length + atServer('hang').length);
    expect(server.received(rejected)).toBe(0);
    const attention = new Map(shown.attention.map((row) => [row.address, row]));
    expect(attention.get(rejected)).toMatchObject({ state: 'failed' });
    expect(attention.get(rejected)?.reply).toContain('550 5.1.1');
    expect(attention.get(cut)).toMatchObject({ state: 'unknown' });
    expect(attention.get(slow)).toMatchObject({ state: 'unknown' });
    expect(ws.query('SELECT address FROM suppressions')).toEqual([{ address: rejected }]);

    // Unknown is never resent on its own; failed neither.
    offCut();
    const ledger = ws.ledger();
    expect(await ws.run(['send-due'])).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(ws.ledger()).toEqual(ledger);
    expect(server.received(cut)).toBe(1);

    // The operator checked the server's logs: the slow one arrived, the cut one did not.
    expect(await ws.run(['reconcile', String(ws.newsletterId), '--mark-sent', slow])).toMatchObject({
      code: 0,
    });
    expect(await ws.run(['reconcile', String(ws.newsletterId), '--resend', cut])).toMatchObject({ code: 0 });
    expect((await ws.show()).status).toBe('sending');
    expect(await ws.run(['send-due'])).toMatchObject({ code: 0, stdout: '', stderr: '' });

    const copies = server.messages.filter((m) => m.to.includes(cut));
    expect(copies.map((m) => m.disposition)).toEqual(['cut', 'accepted']);
    expect(copies[1]?.messageId).toBe(copies[0]?.messageId);
    expect(copies[0]?.messageId).toBe(ledger.find((row) => row.address === cut)?.message_id);
    expect(server.received(slow)).toBe(1);

    const settled = await ws.show();
    expect(settled.status).toBe('sent');
    expect(settled.counts).toMatchObject({ sent: 11, failed: 1, unknown: 0, retry: 0, pending: 0 });
    expect(ws.ledger().filter((row) => row.state === 'sent')).toHaveLength(11);
  });
});
