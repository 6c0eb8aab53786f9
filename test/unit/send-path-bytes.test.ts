/**
 * Issue 17 made the send path cheaper without changing a byte a recipient receives. These pin
 * what it touched: the keyed values (tokens and Message-IDs, values computed by the code before
 * the change), the HMAC key prepared once per secret (src/domain/hmac-key.ts) against a fresh
 * `createHmac` whatever the order of secrets, quoted-printable copied in runs (src/transport/
 * qp.ts) against the character-by-character encoder it replaced, and the Subject line (one
 * header encoder for every message, the last subject remembered) against nodemailer's static
 * encoder, which made a node per call.
 */
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hmacSha256 } from '../../src/domain/hmac-key.js';
import { messageIdFor } from '../../src/domain/message-id.js';
import { createReturnPathToken, createReturnPathTokens } from '../../src/domain/return-path-token.js';
import {
  createAllMailUnsubscribeToken,
  createTestUnsubscribeToken,
  createUnsubscribeToken,
  verifyUnsubscribeToken,
} from '../../src/render/unsubscribe-token.js';
import { fold } from '../../src/transport/header-fold.js';
import { messageBytes } from '../../src/transport/mime.js';
import { encodeQp } from '../../src/transport/qp.js';
import MimeNode from 'nodemailer/lib/mime-node';

const KEY = 'current-secret-0123456789';
const OTHER = 'sëcret ☃';

describe('keyed values, as the code before issue 17 made them', () => {
  it('return path tokens', () => {
    expect(
      createReturnPathTokens(KEY, { deliveryId: 4242, newsletterId: 7, address: 'ann@example.net' }),
    ).toEqual({ bounce: 'baaaaaaaqsk4ozaahj6a2ypz3u4', unsubscribe: 'uaaaaaaaqsi2rujnv4ruz7ospui' });
    expect(
      createReturnPathToken(OTHER, 'bounce', {
        deliveryId: 2 ** 48 - 1,
        newsletterId: 1,
        address: 'zoë@bücher.example',
      }),
    ).toBe('b77777777773fnt2feoeapd44v4');
    expect(createReturnPathToken('', 'unsubscribe', { deliveryId: 0, newsletterId: 0, address: '' })).toBe(
      'uaaaaaaaaaabiwnnleewtgggxgm',
    );
  });

  it('unsubscribe tokens and Message-IDs, the secret switching between calls', () => {
    const target = { subscriberId: 42, newsletterId: 7 };
    for (let round = 0; round < 2; round++) {
      expect(createUnsubscribeToken(KEY, target)).toBe('v2.42.7.PzeGNq0tYkLy_zLxxaBZN_-AT-tvPpy_YHGmjjd0bYg');
      expect(createUnsubscribeToken(OTHER, target)).toBe(
        'v2.42.7.VsD5qXG9PBENqtX6U57wMN7mibGrMQriNRNgWhKJGcA',
      );
      expect(createAllMailUnsubscribeToken(KEY, target)).toBe(
        'v1.42.7.iWY726wGlZ_Lb0MIjcFKsafA1H8L28I4qrDZ2v3U914',
      );
      expect(createTestUnsubscribeToken(KEY, 7)).toBe(
        'v1.test.7.GrsUFnr2RU7bgNv7-hqrIvnOCNz05xa6WZfjM7hqbj8',
      );
      expect(messageIdFor(KEY, 7, 'ann@example.net', 'example.org')).toBe(
        '<n7.0d5798ad9fb533980edd5abaf02fccf6@example.org>',
      );
      expect(messageIdFor(null, 7, 'ann@example.net', 'example.org')).toBe(
        '<n7.e1c5fa58328dc8b2c04dd7b917b46315@example.org>',
      );
    }
    // Verifying with two keys (rotation) switches the prepared key back and forth: both still work.
    const made = createUnsubscribeToken(OTHER, target);
    expect(verifyUnsubscribeToken([KEY, OTHER], made)).toMatchObject({
      kind: 'subscriber',
      subscriberId: 42,
    });
    expect(verifyUnsubscribeToken([KEY], made)).toBeNull();
    expect(createUnsubscribeToken(KEY, target)).toBe('v2.42.7.PzeGNq0tYkLy_zLxxaBZN_-AT-tvPpy_YHGmjjd0bYg');
  });

  it('hmacSha256 is createHmac under the same secret, whatever secret came before', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.string({ unit: 'grapheme', maxLength: 80 }), fc.string({ maxLength: 200 })), {
          minLength: 1,
          maxLength: 6,
        }),
        (calls) => {
          for (const [secret, text] of calls) {
            expect(hmacSha256(secret).update(text).digest('hex')).toBe(
              createHmac('sha256', secret).update(text).digest('hex'),
            );
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

/** qp.ts's encoder before issue 17: one character at a time. The reference for the faster one. */
const MAX_LINE = 75;
const HEX = Array.from({ length: 256 }, (_, byte) => `=${byte.toString(16).toUpperCase().padStart(2, '0')}`);
function referenceQp(text: string): string {
  let out = '';
  let column = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    let token: string;
    if (code === 13 || code === 10) {
      if (code === 13 && text.charCodeAt(i + 1) === 10) i++;
      out += '\r\n';
      column = 0;
      continue;
    }
    if (code >= 33 && code <= 126 && code !== 61) {
      token = code === 46 && column === 0 ? '=2E' : text.charAt(i);
    } else if (code === 32 || code === 9) {
      const next = text.charCodeAt(i + 1);
      const last = i + 1 === text.length || next === 13 || next === 10;
      token = last ? (HEX[code] as string) : text.charAt(i);
    } else if (code < 128) {
      token = HEX[code] as string;
    } else {
      const width = code >= 0xd800 && code <= 0xdbff && /[\udc00-\udfff]/.test(text.charAt(i + 1)) ? 2 : 1;
      token = [...Buffer.from(text.slice(i, i + width), 'utf8')].map((byte) => HEX[byte]).join('');
      i += width - 1;
    }
    if (column + token.length > MAX_LINE) {
      out += '=\r\n';
      column = 0;
      if (token === '.') token = '=2E';
    }
    out += token;
    column += token.length;
  }
  return out;
}

describe('quoted-printable copied in runs', () => {
  // Long runs of plain characters (links), dots and blanks where lines end, "=", line breaks.
  const text = fc
    .array(
      fc.oneof(
        fc.string({ minLength: 60, maxLength: 200, unit: 'grapheme-ascii' }),
        fc.constantFrom(
          '.',
          '..',
          ' ',
          '\t',
          '=',
          '\n',
          '\r\n',
          '\r',
          ' \n',
          '\t\r\n',
          'é',
          '😀',
          '\0',
          '\ud800',
        ),
        fc.string({ unit: 'grapheme', maxLength: 12 }),
      ),
      { maxLength: 20 },
    )
    .map((parts) => parts.join(''));

  it('gives exactly what the character-by-character encoder gave', () => {
    fc.assert(
      fc.property(text, (value) => {
        expect(encodeQp(value)).toBe(referenceQp(value));
      }),
      { numRuns: 1000 },
    );
    const link = `https://example.org/newsletter/u/v2.42.7.${'A'.repeat(43)}`;
    expect(encodeQp(link)).toBe(referenceQp(link));
    expect(encodeQp(`${'x'.repeat(75)}.${'y'.repeat(80)} `)).toBe(
      referenceQp(`${'x'.repeat(75)}.${'y'.repeat(80)} `),
    );
  });
});

describe('the Subject line', () => {
  const message = (subject: string) => ({
    messageId: '<n1.x@example.org>',
    from: 'News <news@example.org>',
    to: 'ann@example.net',
    subject,
    html: '<p>Hi</p>',
    text: 'Hi',
    headers: {},
  });
  const subjectLine = (bytes: Buffer) => /^Subject: .*(?:\r\n[ \t].*)*/m.exec(bytes.toString('utf8'))?.[0];
  const expected = (subject: string) =>
    /^[\x20-\x7e]*$/.test(subject)
      ? fold(`Subject: ${subject}`)
      : fold(`Subject: ${MimeNode.encodeHeaderValue('Subject', subject)}`);

  it('is what nodemailer made of each subject, whatever subject the message before had', () => {
    const subjects = [
      'Grüße aus Köln',
      'Grüße aus Köln',
      'Plain news for December',
      'Grüße aus Köln',
      `Ünïcödé ${'lange Wörter '.repeat(12)}`,
      'Grüße aus Köln',
      'Grüße aus Köln!',
      'Plain news for December',
    ];
    for (const subject of [...subjects, ...subjects.reverse()]) {
      expect(subjectLine(messageBytes(message(subject)))).toBe(expected(subject));
    }
  });
});
