/**
 * Issue 17: a plain SMTP connection decodes its reads itself (src/transport/utf8-reads.ts, the
 * `onread` callback of smtp-session.ts). The socket reads into one buffer it reuses, so each
 * read must be decoded before the next overwrites it, and a UTF-8 character cut between two reads
 * must come out whole. Replies are cut here at every byte, and at random places, into a buffer
 * that is overwritten (with garbage past the bytes read) as a socket's is.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { utf8Reads } from '../../src/transport/utf8-reads.js';

/** Feeds `bytes` in reads of the given sizes through one reused buffer; returns the text out. */
function read(bytes: Buffer, sizes: number[]): string {
  let text = '';
  const callback = utf8Reads((chunk) => {
    text += chunk;
  });
  const buffer = Buffer.alloc(64 * 1024);
  let at = 0;
  for (const size of sizes) {
    const n = Math.min(size, bytes.length - at);
    if (n <= 0) break;
    buffer.fill(0xff);
    bytes.copy(buffer, 0, at, at + n);
    expect(callback(n, buffer)).toBe(true);
    at += n;
  }
  if (at < bytes.length) {
    bytes.copy(buffer, 0, at);
    callback(bytes.length - at, buffer);
  }
  return text;
}

const REPLY = '550 5.1.1 Empfänger unbekannt: «gone» 😀 zurück\r\n250 2.0.0 Ok: queued as Q-ü😀\r\n';

describe('replies decoded from a reused read buffer', () => {
  it('cut into two reads at every byte', () => {
    const bytes = Buffer.from(REPLY, 'utf8');
    for (let cut = 1; cut < bytes.length; cut++) expect(read(bytes, [cut, bytes.length])).toBe(REPLY);
  });

  it('a byte per read', () => {
    const bytes = Buffer.from(REPLY, 'utf8');
    expect(read(bytes, new Array(bytes.length).fill(1))).toBe(REPLY);
  });

  it('any text, cut anywhere', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme', maxLength: 200 }),
        fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 60 }),
        (text, sizes) => {
          expect(read(Buffer.from(text, 'utf8'), sizes)).toBe(text);
        },
      ),
      { numRuns: 500 },
    );
  });
});
