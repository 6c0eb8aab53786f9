/**
 * Issue 17: the send path's HMAC-SHA256 is computed in JavaScript from a key prepared once
 * (src/domain/hmac-sha256-js.ts, hmac-key.ts). It must be node:crypto's HMAC-SHA256 byte for
 * byte, for any key (short, exactly one block, longer than a block: hashed first) and any text
 * (ASCII, any UTF-8, lone surrogates, empty, lengths around the block and padding boundaries), in
 * every encoding the callers ask for, and one MAC must not leak into the next.
 */
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hmacSha256 } from '../../src/domain/hmac-key.js';
import { hmacDigest, prepareHmacKey } from '../../src/domain/hmac-sha256-js.js';

const text = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.string({ unit: 'grapheme', maxLength: 80 }),
  // Lone surrogates: UTF-8 as U+FFFD, as node:crypto encodes them.
  fc.string({ unit: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)) }),
  // Every length across the padding boundaries (55, 56, 63, 64, 119, 120 …).
  fc.nat({ max: 260 }).map((n) => 'a'.repeat(n)),
);
const secret = fc.oneof(
  fc.string({ minLength: 1, maxLength: 200 }),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 100 }),
  fc.nat({ max: 140 }).map((n) => 's'.repeat(n)),
);

describe('HMAC-SHA256 in JavaScript', () => {
  it('equals node:crypto for any key and text, in every encoding', () => {
    fc.assert(
      fc.property(secret, text, text, (key, message, other) => {
        const prepared = prepareHmacKey(Buffer.from(key, 'utf8'));
        const expected = createHmac('sha256', key).update(message).digest();
        expect(hmacDigest(prepared, message).equals(expected)).toBe(true);
        expect(hmacDigest(prepared, message, 'hex')).toBe(expected.toString('hex'));
        expect(hmacDigest(prepared, message, 'base64url')).toBe(expected.toString('base64url'));
        expect(hmacDigest(prepared, message, 'base64')).toBe(expected.toString('base64'));
        // The same key for another text, then a new key: nothing carried over.
        expect(hmacSha256(key).update(other).digest('hex')).toBe(
          createHmac('sha256', key).update(other).digest('hex'),
        );
      }),
      { numRuns: 2000 },
    );
  });

  it('a digest given out is the caller’s: the next MAC does not change it', () => {
    const first = hmacSha256('k').update('one').digest();
    const copy = Buffer.from(first);
    hmacSha256('k').update('two').digest();
    expect(first.equals(copy)).toBe(true);
  });

  it('text given in several updates is MACed as one', () => {
    expect(hmacSha256('k').update('message-id\n').update('7\nann@example.net').digest('hex')).toBe(
      createHmac('sha256', 'k').update('message-id\n7\nann@example.net').digest('hex'),
    );
  });

  it('the empty key and a megabyte of text', () => {
    const big = 'x'.repeat(1 << 20);
    expect(hmacSha256('').update(big).digest('base64url')).toBe(
      createHmac('sha256', '').update(big).digest('base64url'),
    );
  });
});
