/**
 * The message bytes built from encodings prepared once per newsletter (src/transport/mime.ts),
 * read back by mailparser: for any recipient values (names with markup, line breaks, dots at line
 * starts, emoji, long words), the parsed HTML, text and subject are exactly what personalisation
 * produced; there is one text and one HTML part; no line starts with "." (SMTP sends the bytes
 * unstuffed) and none is longer than RFC 5322 allows.
 */
import path from 'node:path';
import fc from 'fast-check';
import { simpleParser } from 'mailparser';
import { beforeAll, describe, expect, it } from 'vitest';
import { messageIdFor } from '../../src/domain/message-id.js';
import type { VerifiedBody } from '../../src/domain/types.js';
import type { Personaliser } from '../../src/engine/ports.js';
import { buildBody } from '../../src/render/build.js';
import { preparePersonaliser } from '../../src/render/personalise.js';
import { isDotSafe, messageBytes, messageChunks } from '../../src/transport/mime.js';
import { TEMPLATES } from '../helpers/cli.js';
import { headerCounts, mimeLeaves } from '../helpers/mail-checks.js';
import { newsletterFixture } from '../helpers/store-fixtures.js';

let body: VerifiedBody;
let personalise: Personaliser;

beforeAll(async () => {
  body = await buildBody(
    newsletterFixture({
      id: 3,
      subject: 'Hello {{name}}, news for {{city}}',
      templatePath: path.join(TEMPLATES, 'monthly-digest.mjml'),
      from: '"Exämple News" <news@example.org>',
    }),
    { templatesRoot: TEMPLATES, knownFields: ['city'], defaultFrom: null },
  );
  personalise = preparePersonaliser(body, {
    newsletterId: 3,
    baseUrl: 'https://news.example.org',
    secret: 'a-secret-for-the-mime-test-0123',
    listNames: ['readers'],
    replyTo: 'Help <help@example.org>',
  });
}, 60_000);

// Values as an import can leave them: trimmed, so none starts or ends with a line break (a CR
// ending one piece and an LF starting the next are two line breaks; see qp.ts).
const value = fc
  .oneof(
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    fc.constantFrom(
      'Zoë & <Co>',
      '.dot',
      'line\nbreak',
      '=3D',
      ' lead',
      'trail ',
      '😀',
      '--=_nl_x',
      'a'.repeat(120),
    ),
  )
  .filter((text) => !/^[\r\n]|[\r\n]$/.test(text));

const lf = (text: string) => text.replace(/\r\n|\r/g, '\n');

describe('prepared MIME, read back by mailparser', () => {
  it('gives back exactly the personalised subject, HTML and text, for any values', async () => {
    await fc.assert(
      fc.asyncProperty(value, value, fc.integer({ min: 1, max: 1e6 }), async (name, city, id) => {
        const to = `reader${id}@example.net`;
        const message = personalise({
          deliveryId: id,
          newsletterId: 3,
          subscriberId: id,
          email: to,
          address: to,
          name,
          fields: { city },
          messageId: messageIdFor(null, 3, to, 'example.org'),
          attempts: 0,
        });
        const chunks = messageChunks(message);
        expect(isDotSafe(chunks)).toBe(true);
        const raw = Buffer.concat(chunks);
        const lines = raw.toString('latin1').split('\r\n');
        expect(lines.filter((line) => line.startsWith('.'))).toEqual([]);
        expect(lines.filter((line) => line.length > 998)).toEqual([]);
        expect(raw.toString('latin1').replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);

        const parsed = await simpleParser(raw);
        // A header value's blanks at either end are not part of it (RFC 5322 unstructured text).
        expect(parsed.subject?.trim()).toBe(message.subject.trim());
        expect(lf(parsed.html || '')).toBe(lf(message.html));
        expect(lf(parsed.text ?? '')).toBe(lf(message.text));
        expect(parsed.messageId).toBe(message.messageId);
        expect(parsed.attachments).toHaveLength(0);
      }),
      { numRuns: 100 },
    );
  });

  it('one text and one HTML part; every header once; the same bytes as messageBytes', async () => {
    const message = personalise({
      deliveryId: 1,
      newsletterId: 3,
      subscriberId: 1,
      email: 'ann@example.net',
      address: 'ann@example.net',
      name: 'Ann',
      fields: { city: 'Leith' },
      messageId: messageIdFor(null, 3, 'ann@example.net', 'example.org'),
      attempts: 0,
    });
    const raw = messageBytes(message);
    expect(raw.equals(Buffer.concat(messageChunks(message)))).toBe(true);
    expect(await mimeLeaves(raw)).toEqual(['text/plain', 'text/html']);
    const counts = await headerCounts(raw);
    for (const name of [
      'message-id',
      'date',
      'from',
      'to',
      'reply-to',
      'subject',
      'mime-version',
      'list-unsubscribe',
      'list-unsubscribe-post',
      'list-id',
    ]) {
      expect(counts.get(name), name).toBe(1);
    }
    // A hand-made message (no parts) comes out the same way, encoded whole.
    const { parts: _parts, ...plain } = message;
    const parsed = await simpleParser(messageBytes({ ...plain, html: message.html, text: message.text }));
    expect(lf(parsed.html || '')).toBe(lf(message.html));
  });
});
