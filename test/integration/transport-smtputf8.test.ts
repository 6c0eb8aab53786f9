/**
 * UTF-8 local parts go out only when the server offers SMTPUTF8 (RFC 6531); an internationalised
 * domain goes out as its A-label and needs nothing. Real SMTP servers, with and without the
 * extension.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { normaliseAddress } from '../../src/domain/address.js';
import { messageIdFor } from '../../src/domain/message-id.js';
import { parseTransport } from '../../src/domain/transport-spec.js';
import type { OutgoingMessage, Transport } from '../../src/engine/ports.js';
import { envelopeOf } from '../../src/transport/compose.js';
import { createSmtpTransport } from '../../src/transport/smtp.js';
import { type SmtpSink, startSmtpSink } from '../helpers/smtp-sink.js';

const open: Array<{ close(): Promise<void> }> = [];

afterEach(async () => {
  for (const resource of open.splice(0)) await resource.close();
});

function message(to: string, from = '"Example News" <news@example.org>'): OutgoingMessage {
  return {
    messageId: messageIdFor(null, 3, to, 'example.org'),
    from,
    to,
    subject: 'Grüße',
    html: '<p>Hallo</p>',
    text: 'Hallo',
    headers: { 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' },
  };
}

async function setup(smtputf8: boolean): Promise<{ sink: SmtpSink; transport: Transport }> {
  const sink = await startSmtpSink({ smtputf8 });
  open.push(sink);
  const spec = parseTransport(sink.url);
  if ('error' in spec || spec.kind !== 'smtp') throw new Error('bad url');
  const transport = createSmtpTransport(spec, { timeoutMs: 5_000, maxConnections: 1 });
  open.unshift(transport);
  return { sink, transport };
}

/** As the CSV import stores it: the domain as A-label, the local part as written (NFC). */
function stored(raw: string): string {
  const parsed = normaliseAddress(raw);
  if (!parsed.ok) throw new Error(parsed.problem);
  return parsed.email;
}

describe('SMTPUTF8', () => {
  it('a server that offers it gets the UTF-8 local part as written', async () => {
    const { sink, transport } = await setup(true);
    const to = stored('jörg@bücher.de');
    expect(to).toBe('jörg@xn--bcher-kva.de');
    expect(await transport.send(message(to))).toMatchObject({ kind: 'sent' });
    expect(sink.messages).toHaveLength(1);
    // Under SMTPUTF8 nodemailer writes the domain in Unicode too, which RFC 6531 allows.
    expect(sink.envelopeCommands).toEqual([
      'MAIL FROM:<news@example.org> SMTPUTF8',
      'RCPT TO:<jörg@bücher.de>',
    ]);
  });

  it('a server without it: that recipient fails with a clear reason and nothing is handed over; ASCII recipients still go', async () => {
    const { sink, transport } = await setup(false);
    const utf8 = stored('jörg@bücher.de');
    const outcome = await transport.send(message(utf8));
    expect(outcome).toEqual({
      kind: 'failed',
      reply: expect.stringMatching(
        /jörg@xn--bcher-kva\.de has a non-ASCII local part.*does not offer SMTPUTF8/,
      ),
      suppress: false,
    });
    expect(sink.received(utf8)).toBe(0);

    // An internationalised domain with an ASCII local part needs no SMTPUTF8: A-label on the wire.
    const idn = stored('Info@Bücher.de');
    expect(idn).toBe('Info@xn--bcher-kva.de');
    expect(await transport.send(message(idn))).toMatchObject({ kind: 'sent' });
    expect(await transport.send(message('plain@example.net'))).toMatchObject({ kind: 'sent' });
    // Asked once, then remembered: a second UTF-8 recipient fails without another question.
    const before = sink.connections;
    expect(await transport.send(message(stored('zoë@example.net')))).toMatchObject({ kind: 'failed' });
    expect(sink.connections).toBe(before);
    expect(sink.messages).toHaveLength(2);
    expect(sink.envelopeCommands.filter((line) => line.startsWith('RCPT'))).toEqual([
      'RCPT TO:<Info@xn--bcher-kva.de>',
      'RCPT TO:<plain@example.net>',
    ]);
    expect(sink.envelopeCommands.some((line) => line.includes('SMTPUTF8'))).toBe(false);
  });

  it('a From with a UTF-8 local part needs it as well', async () => {
    const { sink, transport } = await setup(false);
    const outcome = await transport.send(message('ann@example.net', 'Nöws <nöws@example.org>'));
    expect(outcome).toMatchObject({ kind: 'failed', reply: expect.stringContaining('nöws@example.org') });
    expect(sink.messages).toHaveLength(0);
  });

  it('an unreachable server while asking: retry, as for any connection failure', async () => {
    const { sink, transport } = await setup(true);
    await sink.close();
    expect(await transport.send(message(stored('jörg@example.net')))).toMatchObject({
      kind: 'retry',
      unreachable: true,
    });
  });

  it('the envelope carries an internationalised From domain as its A-label', () => {
    expect(envelopeOf(message('ann@example.net', 'News <news@bücher.example>'))).toEqual({
      from: 'news@xn--bcher-kva.example',
      to: ['ann@example.net'],
    });
  });
});
