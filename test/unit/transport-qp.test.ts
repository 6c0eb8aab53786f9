/**
 * Quoted-printable in pieces (src/transport/qp.ts): whatever the text, the encoding decodes back
 * to it (line breaks as CRLF), no line is longer than 76 characters, no line starts with "." (so
 * SMTP needs no dot-stuffing), and pieces joined by soft line breaks decode to their concatenation,
 * which is how a newsletter's literal text and each recipient's values are put together.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeBase64Lines, encodeQp, preferBase64 } from '../../src/transport/qp.js';

/** RFC 2045 §6.7 decoding: soft breaks removed, `=XX` turned into the byte. */
function decodeQp(encoded: string): string {
  const bytes: number[] = [];
  const text = encoded.replace(/=\r\n/g, '');
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '=') {
      const hex = text.slice(i + 1, i + 3);
      expect(hex, `"=" followed by ${JSON.stringify(hex)}`).toMatch(/^[0-9A-F]{2}$/);
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(text.charCodeAt(i));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

const crlf = (text: string) => text.replace(/\r\n|\r|\n/g, '\r\n');
// Lone surrogates become U+FFFD in UTF-8, as Buffer.from does; compare through it.
const asUtf8 = (text: string) => Buffer.from(crlf(text), 'utf8').toString('utf8');

/** Text with what makes encoding hard: dots and blanks at line starts and ends, "=", long lines. */
const tricky = fc
  .array(
    fc.oneof(
      fc.string({ unit: 'grapheme', maxLength: 12 }),
      fc.constantFrom('.', '..', ' ', '\t', '=', '\n', '\r\n', '\r', '.\n', ' \n', 'é', '😀', '\u2028', '\0'),
      fc.string({ minLength: 70, maxLength: 200, unit: 'grapheme-ascii' }),
    ),
    { maxLength: 30 },
  )
  .map((parts) => parts.join(''));

function checkLines(encoded: string): void {
  for (const line of encoded.split('\r\n')) {
    expect(line.length, line).toBeLessThanOrEqual(76);
    expect(line.startsWith('.'), line).toBe(false);
    // Blanks only ever end a line when a soft break ("=") follows them.
    expect(/[ \t]$/.test(line), JSON.stringify(line)).toBe(false);
  }
  // Nothing but CRLF line breaks, and no 8-bit byte.
  expect(encoded.replace(/\r\n/g, '')).toMatch(/^[\x20-\x7e\t]*$/);
}

describe('quoted-printable', () => {
  it('decodes back to the text, in lines of at most 76, none starting with "."', () => {
    fc.assert(
      fc.property(tricky, (text) => {
        const encoded = encodeQp(text);
        checkLines(encoded);
        expect(decodeQp(encoded)).toBe(asUtf8(text));
      }),
      { numRuns: 500 },
    );
  });

  it('pieces joined with soft breaks decode to the text they were cut from', () => {
    fc.assert(
      fc.property(fc.array(tricky, { minLength: 1, maxLength: 8 }), (pieces) => {
        const joined = pieces.map(encodeQp).join('=\r\n');
        checkLines(joined);
        // Line breaks are normalised piece by piece: a CR that ends one piece and an LF that
        // starts the next are two line breaks, as they are two in the pieces.
        expect(decodeQp(joined)).toBe(pieces.map(asUtf8).join(''));
      }),
      { numRuns: 300 },
    );
  });

  it('leaves plain short values as they are, and encodes what must be', () => {
    expect(encodeQp('Reader 1')).toBe('Reader 1');
    expect(encodeQp('')).toBe('');
    expect(encodeQp('.hidden')).toBe('=2Ehidden');
    expect(encodeQp('a=b')).toBe('a=3Db');
    expect(encodeQp('trailing ')).toBe('trailing=20');
    expect(encodeQp('Zoë')).toBe('Zo=C3=AB');
    expect(encodeQp('line\nbreak')).toBe('line\r\nbreak');
  });

  it('base64 lines of 76, and base64 only for text that is mostly not Latin', () => {
    const encoded = encodeBase64Lines(Buffer.from('x'.repeat(200)));
    expect(encoded.split('\r\n').every((line) => line.length <= 76)).toBe(true);
    expect(Buffer.from(encoded.replace(/\r\n/g, ''), 'base64').toString()).toBe('x'.repeat(200));
    expect(preferBase64('<p>Hello, café</p>'.repeat(50))).toBe(false);
    expect(preferBase64('Здравствуйте, дорогие читатели! '.repeat(50))).toBe(true);
  });
});
