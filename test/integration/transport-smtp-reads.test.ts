/**
 * Issue 17: a plain SMTP connection reads the server's replies into a buffer of its own and
 * decodes them itself (`onread`, src/transport/smtp-session.ts) instead of through the socket's
 * stream. Whatever way the bytes come in, each reply must land on its own transaction, whole and
 * as the server wrote it: here a hand-made server writes every reply one byte per socket write,
 * pipelined replies and UTF-8 among them. (TCP may join such writes before the client reads
 * them; test/unit/transport-utf8-reads.test.ts cuts the reads at every byte.)
 */
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { parseTransport } from '../../src/domain/transport-spec.js';
import type { OutgoingMessage, Transport } from '../../src/engine/ports.js';
import { createSmtpTransport } from '../../src/transport/smtp.js';
import { helloMessage } from '../helpers/hello-message.js';

const REFUSAL = '550 5.1.1 Empfänger unbekannt: «gone» 😀 zurück';
const ACCEPTED = '250 2.0.0 Ok: queued as Q-ü😀';

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const resource of open.splice(0)) await resource.close();
});

/** A pipelining server that writes each reply a byte at a time, each byte once the last is out. */
async function tricklingServer(): Promise<{ port: number; received: string[] }> {
  const received: string[] = [];
  const server: Server = createServer((socket: Socket) => {
    socket.setNoDelay(true);
    let queue = Promise.resolve();
    const reply = (text: string): void => {
      const bytes = Buffer.from(`${text}\r\n`, 'utf8');
      queue = queue.then(async () => {
        for (const byte of bytes) {
          if (socket.destroyed) return;
          await new Promise<void>((resolve) => socket.write(Buffer.of(byte), () => resolve()));
        }
      });
    };
    let inData = false;
    let refused = false;
    let message = '';
    let pending = '';
    reply('220 trickle ESMTP');
    socket.setEncoding('utf8');
    socket.on('error', () => undefined);
    socket.on('data', (chunk: string) => {
      pending += chunk;
      for (let end = pending.indexOf('\r\n'); end !== -1; end = pending.indexOf('\r\n')) {
        const line = pending.slice(0, end);
        pending = pending.slice(end + 2);
        if (inData) {
          if (line !== '.') {
            message += `${line}\n`;
            continue;
          }
          inData = false;
          received.push(message);
          message = '';
          reply(ACCEPTED);
          continue;
        }
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') reply('250-trickle greets you\r\n250-PIPELINING\r\n250 8BITMIME');
        else if (verb === 'MAIL') {
          refused = false;
          reply('250 2.1.0 Ok');
        } else if (verb === 'RCPT') {
          refused = line.includes('gone@');
          reply(refused ? REFUSAL : '250 2.1.5 Ok');
        } else if (verb === 'DATA') {
          if (refused) reply('554 5.5.1 Error: no valid recipients');
          else {
            inData = true;
            reply('354 End data with <CR><LF>.<CR><LF>');
          }
        } else if (verb === 'RSET') reply('250 2.0.0 Ok');
        else if (verb === 'QUIT') {
          reply('221 2.0.0 Bye');
          queue = queue.then(() => void socket.end());
        } else reply('502 5.5.2 Error: command not recognized');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  open.push({
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.unref();
      }),
  });
  return { port: (server.address() as { port: number }).port, received };
}

const message = (to: string): OutgoingMessage => helloMessage(to);

function transportFor(port: number): Transport {
  const spec = parseTransport(`smtp://127.0.0.1:${port}`);
  if ('error' in spec || spec.kind !== 'smtp') throw new Error('bad test url');
  const transport = createSmtpTransport(spec, { timeoutMs: 10_000 });
  open.unshift(transport);
  return transport;
}

describe('replies read a byte at a time', () => {
  it('every reply lands whole, UTF-8 intact, on its own transaction, pipelined or not', async () => {
    const { port, received } = await tricklingServer();
    const transport = transportFor(port);
    const recipients = ['a@example.net', 'gone@example.net', 'b@example.net', 'c@example.net'];
    const outcomes = await Promise.all(recipients.map((to) => transport.send(message(to))));
    expect(outcomes[0]).toEqual({ kind: 'sent', reply: ACCEPTED, queueId: 'Q-ü😀' });
    expect(outcomes[1]).toEqual({ kind: 'failed', reply: `${REFUSAL} (RCPT TO)`, suppress: true });
    expect(outcomes[2]).toEqual({ kind: 'sent', reply: ACCEPTED, queueId: 'Q-ü😀' });
    expect(outcomes[3]).toEqual({ kind: 'sent', reply: ACCEPTED, queueId: 'Q-ü😀' });
    // The refused one's data never went out; the others' did, once each.
    expect(received).toHaveLength(3);
    expect(received.some((text) => text.includes('gone@example.net'))).toBe(false);
  });
});
