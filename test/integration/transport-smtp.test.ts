import { createServer } from 'node:net';
import { simpleParser } from 'mailparser';
import { afterEach, describe, expect, it } from 'vitest';
import { messageIdFor } from '../../src/domain/message-id.js';
import { parseTransport, type TransportSpec } from '../../src/domain/transport-spec.js';
import type { OutgoingMessage, Transport } from '../../src/engine/ports.js';
import { TransportCheckError } from '../../src/transport/check-error.js';
import { createSmtpTransport, type SmtpOptions } from '../../src/transport/smtp.js';
import { type SmtpSink, type SmtpSinkOptions, startSmtpSink } from '../helpers/smtp-sink.js';
import { testCa } from '../helpers/tls-fixture.js';

const FROM = '"Example News" <news@example.org>';

function message(to: string, extra: Partial<OutgoingMessage> = {}): OutgoingMessage {
  return {
    messageId: messageIdFor(null, 7, to, 'example.org'),
    from: FROM,
    to,
    subject: `Hello ${to}`,
    html: `<p>Hello <b>${to}</b></p>`,
    text: `Hello ${to}`,
    headers: {
      'List-Unsubscribe':
        '<https://news.example.org/u/abc.def>, <mailto:unsubscribe@example.org?subject=abc>',
      'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
      'List-Id': 'Example News <news.example.org>',
    },
    ...extra,
  };
}

function smtpSpec(url: string, user?: string, password?: string): Extract<TransportSpec, { kind: 'smtp' }> {
  const auth = user ? `${encodeURIComponent(user)}:${encodeURIComponent(password ?? '')}@` : '';
  const spec = parseTransport(url.replace('smtp://', `smtp://${auth}`));
  if ('error' in spec || spec.kind !== 'smtp') throw new Error('bad test url');
  return spec;
}

const open: Array<{ close(): Promise<void> }> = [];

async function sinkAndTransport(
  sinkOptions: SmtpSinkOptions = {},
  options: SmtpOptions = {},
  credentials?: { user: string; password: string },
): Promise<{ sink: SmtpSink; transport: Transport }> {
  const sink = await startSmtpSink(sinkOptions);
  open.push(sink);
  const transport = createSmtpTransport(smtpSpec(sink.url, credentials?.user, credentials?.password), {
    timeoutMs: 5_000,
    ...options,
  });
  open.unshift(transport);
  return { sink, transport };
}

afterEach(async () => {
  for (const resource of open.splice(0)) await resource.close();
});

describe('smtp transport against a real server', () => {
  it('sends 20 messages through the pool, each exactly once, with queue ids', async () => {
    const { sink, transport } = await sinkAndTransport({}, { maxConnections: 3 });
    const recipients = Array.from({ length: 20 }, (_, i) => `reader${i}@example.net`);

    const outcomes = await Promise.all(recipients.map((to) => transport.send(message(to))));

    for (const outcome of outcomes) {
      expect(outcome).toMatchObject({ kind: 'sent', queueId: expect.stringMatching(/^SINK\d+$/) });
    }
    expect(sink.total).toBe(20);
    for (const to of recipients) expect(sink.count(to)).toBe(1);
    expect(new Set(sink.messages.map((m) => m.messageId))).toEqual(
      new Set(recipients.map((to) => messageIdFor(null, 7, to, 'example.org'))),
    );
    expect(sink.messages.every((m) => m.from === 'news@example.org' && m.to.length === 1)).toBe(true);
    expect(sink.connections).toBeLessThanOrEqual(3);
  });

  it('delivers one html part, one text part, the Message-ID and the list headers', async () => {
    const { sink, transport } = await sinkAndTransport();
    const outgoing = message('ann@example.net', {
      subject: 'Grüße {{not a field}}',
      html: '<p>Hello Ann, ünïcödé</p>\n<p>.</p>',
      text: 'Hello Ann, ünïcödé\n.\nbye',
      headers: {
        'List-Unsubscribe': `<https://news.example.org/u/${'t'.repeat(150)}>, <mailto:unsubscribe@example.org>`,
        'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
        'List-Id': 'Nöws of Example <news.example.org>',
      },
    });

    expect(await transport.send(outgoing)).toMatchObject({ kind: 'sent' });

    const received = sink.messages[0];
    expect(received?.messageId).toBe(outgoing.messageId);
    const parsed = await simpleParser(received?.raw ?? Buffer.alloc(0));
    expect(parsed.messageId).toBe(outgoing.messageId);
    expect(parsed.subject).toBe('Grüße {{not a field}}');
    expect(parsed.html).toContain('<p>Hello Ann, ünïcödé</p>');
    expect(parsed.text?.trim()).toBe('Hello Ann, ünïcödé\n.\nbye');
    expect(parsed.attachments).toHaveLength(0);
    expect(parsed.headers.get('content-type')).toMatchObject({ value: 'multipart/alternative' });
    expect(parsed.headerLines.find((h) => h.key === 'list-unsubscribe')?.line.replace(/\r?\n\s+/g, ' ')).toBe(
      `List-Unsubscribe: ${outgoing.headers['List-Unsubscribe']}`,
    );
    expect(parsed.headers.get('list')).toMatchObject({
      unsubscribe: { mail: 'unsubscribe@example.org' },
      'unsubscribe-post': { name: 'List-Unsubscribe=One-Click' },
      id: { id: 'news.example.org' },
    });
    // Only the phrase is encoded (RFC 2047 in a phrase); the id in angle brackets stays readable.
    expect(parsed.headerLines.find((h) => h.key === 'list-id')?.line).toBe(
      'List-ID: =?UTF-8?Q?N=C3=B6ws_of_Example?= <news.example.org>',
    );
    const raw = received?.raw.toString('latin1') ?? '';
    expect(raw.match(/^Content-Type: text\/html/gm)).toHaveLength(1);
    expect(raw.match(/^Content-Type: text\/plain/gm)).toHaveLength(1);
    expect(raw).not.toMatch(/^X-Mailer:/m);
  });

  it('450 at RCPT TO → retry', async () => {
    const to = 'busy@example.net';
    const { transport } = await sinkAndTransport({
      faults: [{ to, fault: { kind: 'rejectRcpt', code: 450, text: '4.2.1 Mailbox busy, try later' } }],
    });
    expect(await transport.send(message(to))).toEqual({
      kind: 'retry',
      reply: '450 4.2.1 Mailbox busy, try later (RCPT TO)',
      throttled: false,
      unreachable: false,
    });
  });

  it('421 → retry, throttled', async () => {
    const to = 'slow@example.net';
    const { transport } = await sinkAndTransport({
      faults: [{ to, fault: { kind: 'rejectRcpt', code: 421, text: '4.7.0 Too many messages, slow down' } }],
    });
    expect(await transport.send(message(to))).toMatchObject({ kind: 'retry', throttled: true });
  });

  it('454 → retry, throttled', async () => {
    const to = 'slow@example.net';
    const { transport } = await sinkAndTransport({
      faults: [{ to, fault: { kind: 'rejectRcpt', code: 454, text: '4.7.1 Rate limit exceeded' } }],
    });
    expect(await transport.send(message(to))).toMatchObject({ kind: 'retry', throttled: true });
  });

  it('550 5.1.1 → failed, suppress; the connection stays usable for the next message', async () => {
    const to = 'gone@example.net';
    const { sink, transport } = await sinkAndTransport({
      faults: [
        {
          to,
          fault: {
            kind: 'rejectRcpt',
            code: 550,
            text: `5.1.1 <${to}>: Recipient address rejected: User unknown`,
          },
        },
      ],
    });
    expect(await transport.send(message(to))).toEqual({
      kind: 'failed',
      reply: `550 5.1.1 <${to}>: Recipient address rejected: User unknown (RCPT TO)`,
      suppress: true,
    });
    expect(await transport.send(message('next@example.net'))).toMatchObject({ kind: 'sent' });
    expect(sink.received(to)).toBe(0);
  });

  it('a 5xx after the data → failed (reply code after DATA)', async () => {
    const to = 'spam@example.net';
    const { sink, transport } = await sinkAndTransport({
      faults: [{ to, fault: { kind: 'rejectData', code: 554, text: '5.7.1 Message rejected as spam' } }],
    });
    expect(await transport.send(message(to))).toEqual({
      kind: 'failed',
      reply: '554 5.7.1 Message rejected as spam (DATA)',
      suppress: false,
    });
    expect(sink.received(to)).toBe(1);
  });

  it('a 4xx after the data → retry (the server said no: nothing was delivered)', async () => {
    const to = 'greylist@example.net';
    const { transport } = await sinkAndTransport({
      faults: [{ to, fault: { kind: 'rejectData', code: 451, text: '4.7.1 Greylisted, come back later' } }],
    });
    expect(await transport.send(message(to))).toMatchObject({
      kind: 'retry',
      throttled: false,
      unreachable: false,
    });
  });

  describe('phase tracking', () => {
    it('connection cut after the whole message was read, before the reply → unknown, and never resent', async () => {
      const to = 'cut@example.net';
      const { sink, transport } = await sinkAndTransport({
        faults: [{ to, fault: { kind: 'cutAfterData' } }],
      });

      const outcome = await transport.send(message(to));

      expect(outcome.kind).toBe('unknown');
      expect(outcome.reply).toMatch(/after the message data was sent/);
      // A later message goes through a new connection; the cut one is not sent again.
      expect(await transport.send(message('after@example.net'))).toMatchObject({ kind: 'sent' });
      await transport.close();
      expect(sink.received(to)).toBe(1);
      expect(sink.count(to)).toBe(0);
      expect(sink.count('after@example.net')).toBe(1);
    });

    it('connection cut at RCPT TO, although nodemailer had already buffered the message → retry', async () => {
      const to = 'early-cut@example.net';
      const { sink, transport } = await sinkAndTransport({ faults: [{ to, fault: { kind: 'cutAtRcpt' } }] });
      expect(await transport.send(message(to))).toMatchObject({ kind: 'retry', unreachable: true });
      expect(sink.received(to)).toBe(0);
    });

    it('a large message (several stream buffers) cut at RCPT → retry, cut after data → unknown', async () => {
      const big = `<p>${'Lorem ipsum dolor sit amet. '.repeat(20_000)}</p>`;
      const { transport } = await sinkAndTransport({
        faults: [
          { to: 'big-early@example.net', fault: { kind: 'cutAtRcpt' } },
          { to: 'big-late@example.net', fault: { kind: 'cutAfterData' } },
        ],
      });
      expect(await transport.send(message('big-early@example.net', { html: big }))).toMatchObject({
        kind: 'retry',
      });
      expect(await transport.send(message('big-late@example.net', { html: big }))).toMatchObject({
        kind: 'unknown',
      });
      expect(await transport.send(message('big-ok@example.net', { html: big }))).toMatchObject({
        kind: 'sent',
      });
    });

    it('server reads the message and never replies; the socket times out → unknown', async () => {
      const to = 'hang@example.net';
      const { sink, transport } = await sinkAndTransport(
        { faults: [{ to, fault: { kind: 'hangAfterData' } }] },
        { socketTimeoutMs: 300 },
      );
      const outcome = await transport.send(message(to));
      expect(outcome.kind).toBe('unknown');
      expect(outcome.reply).toMatch(/ETIMEDOUT/);
      expect(sink.received(to)).toBe(1);
    });

    it('a server that never replies is bounded by messageTimeoutMs too → unknown after the data', async () => {
      const to = 'hang@example.net';
      const { transport } = await sinkAndTransport(
        { faults: [{ to, fault: { kind: 'hangAfterData' } }] },
        { socketTimeoutMs: 30_000, messageTimeoutMs: 300 },
      );
      expect(await transport.send(message(to))).toMatchObject({ kind: 'unknown' });
    });

    it('a connection dropped before the greeting is not retried by the pool on its own', async () => {
      const { sink, transport } = await sinkAndTransport({
        faults: [{ nth: 1, fault: { kind: 'dropConnection' } }],
      });
      expect(await transport.send(message('first@example.net'))).toMatchObject({
        kind: 'retry',
        unreachable: true,
      });
      expect(await transport.send(message('second@example.net'))).toMatchObject({ kind: 'sent' });
      expect(sink.count('first@example.net')).toBe(0);
      expect(sink.connections).toBe(2);
    });
  });

  it('nothing listening → retry, unreachable', async () => {
    const port = await closedPort();
    const transport = createSmtpTransport(smtpSpec(`smtp://127.0.0.1:${port}`), { timeoutMs: 2_000 });
    open.push(transport);
    const outcome = await transport.send(message('nobody@example.net'));
    expect(outcome).toMatchObject({ kind: 'retry', unreachable: true, throttled: false });
    expect(outcome.reply).toMatch(/ECONNREFUSED/);
    await expect(transport.verify()).rejects.toBeInstanceOf(TransportCheckError);
  });

  describe('authentication', () => {
    const auth = { user: 'news', password: 'c0rrect-h0rse-battery' };

    it('the right password sends; verify() passes', async () => {
      const { sink, transport } = await sinkAndTransport({ auth }, { ca: testCa() }, auth);
      await transport.verify();
      expect(await transport.send(message('ann@example.net'))).toMatchObject({ kind: 'sent' });
      expect(sink.count('ann@example.net')).toBe(1);
    });

    it('a wrong password → fatal, and neither the outcome nor verify() shows it', async () => {
      const wrong = { user: 'news', password: 'wr0ng-s3cret-pa55' };
      const { sink, transport } = await sinkAndTransport({ auth }, { ca: testCa() }, wrong);

      const outcome = await transport.send(message('ann@example.net'));
      expect(outcome).toMatchObject({ kind: 'fatal' });
      expect(outcome.reply).toMatch(
        /^535 5\.7\.8 Authentication credentials invalid \(AUTH (PLAIN|LOGIN)\)$/,
      );
      expect(outcome.reply).not.toContain(wrong.password);

      const error = await transport.verify().then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(TransportCheckError);
      expect((error as TransportCheckError).outcome.kind).toBe('fatal');
      expect((error as Error).message).toMatch(/535/);
      expect((error as Error).message).not.toContain(wrong.password);
      expect(String((error as Error).stack)).not.toContain(wrong.password);
      expect(sink.total).toBe(0);
    });

    it('no credentials where the server requires them → fatal', async () => {
      const { transport } = await sinkAndTransport({ auth }, { ca: testCa() });
      expect(await transport.send(message('ann@example.net'))).toMatchObject({ kind: 'fatal' });
    });
  });
});

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}
