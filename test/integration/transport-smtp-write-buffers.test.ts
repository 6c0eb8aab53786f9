/**
 * Issue 17: the SMTP client builds each message from mime.ts's pieces straight into a buffer it
 * reuses once the socket is done with it (src/transport/write-buffers.ts). What the server
 * receives must still be, byte for byte, the message every other transport writes
 * (`messageBytes`), however many messages share the connections and however large: a message of
 * megabytes outgrows the socket's buffer, so its write is still running while the other
 * connections' messages are built. (That a buffer is not reused before its write's callback is
 * test/unit/transport-write-buffers.test.ts's to check.)
 */
import path from 'node:path';
import { simpleParser } from 'mailparser';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { messageIdFor } from '../../src/domain/message-id.js';
import type { OutgoingMessage } from '../../src/domain/message.js';
import type { Personaliser } from '../../src/engine/ports.js';
import { buildBody } from '../../src/render/build.js';
import { preparePersonaliser } from '../../src/render/personalise.js';
import { isDotSafe, messageBytes, messagePieces } from '../../src/transport/mime.js';
import { createSmtpTransport } from '../../src/transport/smtp.js';
import { WriteBuffers } from '../../src/transport/write-buffers.js';
import { TEMPLATES } from '../helpers/cli.js';
import { type SmtpSink, type SmtpSinkOptions, startSmtpSink } from '../helpers/smtp-sink.js';
import { testCa } from '../helpers/tls-fixture.js';
import { newsletterFixture } from '../helpers/store-fixtures.js';

let personalise: Personaliser;
const open: Array<{ close(): Promise<void> }> = [];

beforeAll(async () => {
  const body = await buildBody(
    newsletterFixture({
      id: 5,
      subject: 'Grüße, {{name}}: news for {{city}}',
      templatePath: path.join(TEMPLATES, 'monthly-digest.mjml'),
      from: '"Exämple News" <news@example.org>',
    }),
    { templatesRoot: TEMPLATES, knownFields: ['city'], defaultFrom: null },
  );
  personalise = preparePersonaliser(body, {
    newsletterId: 5,
    baseUrl: 'https://news.example.org',
    secret: 'a-secret-for-the-write-buffer-test',
    listNames: ['readers'],
    returnPath: { address: null, delimiter: '+' },
  });
}, 60_000);

afterEach(async () => {
  for (const resource of open.splice(0)) await resource.close();
});

const NAMES = ['Ann', 'Zoë & <Co>', '.dot', 'line\nbreak', '😀 Émile', 'x'.repeat(300)];
const CITIES = ['Leith', 'Zürich', '', '東京', '=3D'];

function personalised(i: number): OutgoingMessage {
  const to = `reader${i}@example.net`;
  return personalise({
    deliveryId: 100 + i,
    newsletterId: 5,
    subscriberId: i,
    email: to,
    address: to,
    name: NAMES[i % NAMES.length] as string,
    fields: { city: CITIES[i % CITIES.length] as string },
    messageId: messageIdFor(null, 5, to, 'example.org'),
    attempts: 0,
  });
}

/** A hand-made message of about `kb` kilobytes, different in every byte position from the others. */
function large(i: number, kb: number): OutgoingMessage {
  const to = `big${i}@example.net`;
  const line = `Message ${i}: ${'abcdefghij'.repeat(6)} ${i}\n`;
  const html = `<p>${line.repeat(Math.ceil((kb * 1024) / line.length))}</p>`;
  return {
    messageId: messageIdFor(null, 5, to, 'example.org'),
    from: 'News <news@example.org>',
    to,
    subject: `Large ${i}`,
    html,
    text: html.replace(/<\/?p>/g, ''),
    headers: { 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' },
  };
}

// The Date header names the second the message was built: equal bytes apart from it.
const withoutDate = (bytes: Buffer) => bytes.toString('latin1').replace(/^Date: .*\r\n/m, '');

async function sink(options: SmtpSinkOptions = {}): Promise<SmtpSink> {
  const started = await startSmtpSink(options);
  open.push(started);
  return started;
}

/** Sends every message at once over three connections; checks each arrived byte for byte. */
async function sendAndCompare(server: SmtpSink, messages: OutgoingMessage[], secure: boolean): Promise<void> {
  const transport = createSmtpTransport(
    { kind: 'smtp', host: '127.0.0.1', port: server.port, secure, user: null, password: null },
    { maxConnections: 3, timeoutMs: 20_000, ...(secure ? { ca: testCa() } : {}) },
  );
  open.unshift(transport);
  const outcomes = await Promise.all(messages.map((message) => transport.send(message)));
  expect(outcomes.map((outcome) => outcome.kind)).toEqual(messages.map(() => 'sent'));
  expect(server.messages).toHaveLength(messages.length);
  for (const message of messages) {
    const received = server.messages.find((m) => m.messageId === message.messageId);
    expect(received, message.to).toBeDefined();
    expect(withoutDate(received?.raw ?? Buffer.alloc(0)), message.to).toBe(
      withoutDate(messageBytes(message)),
    );
  }
}

describe('messages written from reused buffers', () => {
  it('the pieces, gathered, are messageBytes; mailparser reads back what was personalised', async () => {
    const buffers = new WriteBuffers();
    for (let i = 0; i < 40; i++) {
      const message = personalised(i);
      const pieces = messagePieces(message);
      expect(isDotSafe(pieces)).toBe(true);
      const gathered = buffers.gather(pieces);
      expect(withoutDate(gathered.bytes)).toBe(withoutDate(messageBytes(message)));
      const parsed = await simpleParser(Buffer.from(gathered.bytes));
      expect(parsed.subject?.trim()).toBe(message.subject.trim());
      expect((parsed.text ?? '').replace(/\r\n/g, '\n')).toBe(message.text.replace(/\r\n|\r/g, '\n'));
      // Every other message's buffer goes back, as a socket's write callback would give it.
      if (i % 2 === 0) gathered.written();
    }
  });

  it('a server receives every message byte for byte, over three pipelining connections', async () => {
    // Small and large messages mixed, every one different.
    const messages = Array.from({ length: 90 }, (_, i) =>
      i % 15 === 7 ? large(i, 1500 + 100 * i) : personalised(i),
    );
    await sendAndCompare(await sink(), messages, false);
  }, 60_000);

  it('and over TLS, where a write hands the bytes to the encryption first', async () => {
    const messages = Array.from({ length: 30 }, (_, i) => (i % 10 === 3 ? large(i, 2000) : personalised(i)));
    await sendAndCompare(await sink({ tls: 'implicit' }), messages, true);
  }, 60_000);
});
