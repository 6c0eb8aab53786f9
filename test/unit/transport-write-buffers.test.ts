/**
 * The SMTP client's reused write buffers (src/transport/write-buffers.ts, issue 17): the bytes
 * gathered are exactly the pieces concatenated (strings as UTF-8, whatever they hold), and a
 * buffer is handed out again only after the socket said its write succeeded, never while a
 * write may still read it, and never after a failed one.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { WriteBuffers } from '../../src/transport/write-buffers.js';

const piece = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 300 }),
  // Lone surrogates included: written as U+FFFD, as Buffer.from writes them.
  fc.string({ unit: fc.integer({ min: 0xd800, max: 0xdfff }).map((code) => String.fromCharCode(code)) }),
  fc.uint8Array({ maxLength: 5000 }).map((bytes) => Buffer.from(bytes)),
);

const concat = (pieces: readonly (Buffer | string)[]) =>
  Buffer.concat(pieces.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p)));

describe('reused write buffers', () => {
  it('gather gives the pieces concatenated, strings as UTF-8, buffer after buffer', () => {
    const buffers = new WriteBuffers();
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 40 }), fc.boolean(), (pieces, release) => {
        const gathered = buffers.gather(pieces);
        expect(gathered.bytes.equals(concat(pieces))).toBe(true);
        if (release) gathered.written();
      }),
      { numRuns: 300 },
    );
  });

  it('a buffer comes back only once its write succeeded, and its bytes stay put until then', () => {
    const buffers = new WriteBuffers();
    const first = buffers.gather([Buffer.alloc(30_000, 0x61), 'one']);
    const expected = Buffer.from(first.bytes);
    // Written while the first write is pending: another buffer, the first one untouched.
    const second = buffers.gather([Buffer.alloc(30_000, 0x62), 'two']);
    expect(second.bytes.buffer).not.toBe(first.bytes.buffer);
    expect(first.bytes.equals(expected)).toBe(true);
    expect(buffers.freeCount).toBe(0);

    first.written();
    expect(buffers.freeCount).toBe(1);
    const third = buffers.gather([Buffer.alloc(20_000, 0x63)]);
    expect(third.bytes.buffer).toBe(first.bytes.buffer);
    expect(third.bytes.equals(Buffer.alloc(20_000, 0x63))).toBe(true);
    expect(second.bytes.subarray(0, 30_000).equals(Buffer.alloc(30_000, 0x62))).toBe(true);
  });

  it('a failed write keeps its buffer out of circulation; a second callback changes nothing', () => {
    const buffers = new WriteBuffers();
    const failed = buffers.gather([Buffer.alloc(1000, 1)]);
    failed.written(new Error('EPIPE'));
    failed.written();
    expect(buffers.freeCount).toBe(0);
    expect(buffers.gather([Buffer.alloc(10, 2)]).bytes.buffer).not.toBe(failed.bytes.buffer);

    const done = buffers.gather([Buffer.alloc(1000, 3)]);
    done.written();
    done.written();
    expect(buffers.freeCount).toBe(1);
  });

  it('a message larger than every free buffer gets a new one; a very large one is not kept', () => {
    const buffers = new WriteBuffers();
    const small = buffers.gather(['x']);
    small.written();
    const large = buffers.gather([Buffer.alloc(200_000, 7)]);
    expect(large.bytes.buffer).not.toBe(small.bytes.buffer);
    expect(large.bytes.length).toBe(200_000);
    large.written();
    expect(buffers.freeCount).toBe(2);
    const huge = buffers.gather([Buffer.alloc(5 * 1024 * 1024, 8)]);
    huge.written();
    expect(buffers.freeCount).toBe(2);
  });

  it('append adds text after the pieces while there is room, and never once the write is handed back', () => {
    const buffers = new WriteBuffers();
    fc.assert(
      fc.property(
        fc.array(piece, { maxLength: 20 }),
        fc.array(fc.string({ unit: 'binary', maxLength: 200 }), { maxLength: 8 }),
        fc.nat({ max: 2000 }),
        (pieces, texts, spare) => {
          const gathered = buffers.gather(pieces, spare);
          const appended: string[] = [];
          let room = spare;
          for (const text of texts) {
            const fits = 3 * text.length <= room;
            const done = gathered.append(text);
            // With `spare` bytes kept, what fits in them is always taken (more may be).
            if (fits) expect(done).toBe(true);
            if (done) {
              appended.push(text);
              room -= Buffer.byteLength(text, 'utf8');
            }
          }
          expect(gathered.bytes.equals(concat([...pieces, ...appended]))).toBe(true);
          gathered.written();
          expect(gathered.append('QUIT\r\n')).toBe(false);
        },
      ),
      { numRuns: 300 },
    );
  });
});
