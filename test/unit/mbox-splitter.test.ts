/**
 * The streaming mbox splitter (src/import/mbox-splitter.ts): whatever the chunks a file arrives
 * in, even one byte at a time, the same messages come out as from the whole file at once, and
 * every message written with the mboxrd rules (test/helpers/dsn.ts `mbox`) comes back byte for
 * byte: separators, `>From ` quoting, blank lines, CRLF and 8-bit bytes across chunk boundaries.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type MboxMessage, MboxSplitter, splitMboxBuffer } from '../../src/import/mbox-splitter.js';
import { mbox } from '../helpers/dsn.js';

function splitInChunks(raw: Buffer, cuts: readonly number[], maxMessageBytes?: number): MboxMessage[] {
  const splitter = new MboxSplitter(maxMessageBytes === undefined ? {} : { maxMessageBytes });
  const out: MboxMessage[] = [];
  let from = 0;
  for (const cut of [...new Set(cuts)].sort((a, b) => a - b)) {
    if (cut <= from || cut >= raw.length) continue;
    out.push(...splitter.push(raw.subarray(from, cut)));
    from = cut;
  }
  out.push(...splitter.push(raw.subarray(from)));
  out.push(...splitter.end());
  return out;
}

const texts = (messages: MboxMessage[]): string[] => messages.map((m) => m.raw.toString('latin1'));

/** An mbox as a person's mail client leaves it: 8-bit, CRLF, quoted From lines, no final newline. */
const SAMPLE = Buffer.concat([
  Buffer.from('From MAILER-DAEMON  Fri Nov 27 03:40:00 2026\n'),
  Buffer.from('Subject: one\n\nGr'),
  Buffer.from([0xfc, 0xdf, 0x65, 0x0a]),
  Buffer.from('>From the quoted line\n>>From twice quoted\nFrom not after a blank line\n\n'),
  Buffer.from('From someone@example.net Fri Nov 27 03:41:00 2026\r\n'),
  Buffer.from('Subject: two\r\n\r\nbody\r\n\r\n\r\n'),
  Buffer.from('From x Fri Nov 27 03:42:00 2026\n\n \n\n'),
  Buffer.from('From y Fri Nov 27 03:43:00 2026\nSubject: last\n\nno newline at the end'),
]);

const SAMPLE_MESSAGES = [
  Buffer.concat([
    Buffer.from('Subject: one\n\nGr'),
    Buffer.from([0xfc, 0xdf, 0x65, 0x0a]),
    Buffer.from('From the quoted line\n>From twice quoted\nFrom not after a blank line\n'),
  ]).toString('latin1'),
  'Subject: two\r\n\r\nbody\r\n\r\n',
  // the whitespace-only message between them is dropped
  'Subject: last\n\nno newline at the end',
];

describe('MboxSplitter', () => {
  it('splits the whole file as the rules say', () => {
    expect(texts(splitMboxBuffer(SAMPLE))).toEqual(SAMPLE_MESSAGES);
  });

  it('gives the same messages for every chunk size, one byte upwards', () => {
    for (let size = 1; size <= SAMPLE.length; size++) {
      const cuts: number[] = [];
      for (let at = size; at < SAMPLE.length; at += size) cuts.push(at);
      expect(texts(splitInChunks(SAMPLE, cuts)), `chunks of ${size} bytes`).toEqual(SAMPLE_MESSAGES);
    }
  });

  it('gives the same messages for every single cut point', () => {
    for (let cut = 1; cut < SAMPLE.length; cut++) {
      expect(texts(splitInChunks(SAMPLE, [cut])), `cut at ${cut}`).toEqual(SAMPLE_MESSAGES);
    }
  });

  it('round-trips any messages written as mboxrd, cut anywhere', () => {
    const line = fc.oneof(
      fc.constantFrom('From here', '>From there', '>>From x', 'From', 'Fro', '', ' ', 'x: y', '\r'),
      fc.string({ unit: fc.constantFrom('a', 'F', 'r', 'o', 'm', ' ', '>'), maxLength: 12 }),
    );
    const message = fc
      .tuple(
        fc.constantFrom('Subject: s', 'From: a@example.net'),
        fc.array(line, { maxLength: 8 }),
        fc.constantFrom('\n', '\r\n'),
      )
      .map(([first, rest, eol]) => `${[first, ...rest].join(eol)}${eol}`);
    fc.assert(
      fc.property(
        fc.array(message, { minLength: 1, maxLength: 5 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        (messages, cutSeeds) => {
          const raw = Buffer.from(mbox(messages), 'latin1');
          const cuts = cutSeeds.map((seed) => seed % raw.length);
          expect(texts(splitInChunks(raw, cuts))).toEqual(messages);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a line longer than a chunk and than the carry limit is kept whole, quoting and all', () => {
    const long = 'x'.repeat(200_000);
    const raw = Buffer.from(
      `From a Fri Nov 27 03:40:00 2026\nSubject: long\n\n${long}\n>From ${long}\n\n` +
        `From ${long}\nSubject: after a long separator\n\nend\n`,
    );
    const cuts: number[] = [];
    for (let at = 1000; at < raw.length; at += 1000) cuts.push(at);
    expect(texts(splitInChunks(raw, cuts))).toEqual([
      `Subject: long\n\n${long}\nFrom ${long}\n`,
      'Subject: after a long separator\n\nend\n',
    ]);
  });

  it('a message over the size limit keeps its beginning and says so; the next one is whole', () => {
    const raw = Buffer.from(
      `From a Fri Nov 27 03:40:00 2026\nSubject: big\n\n${'y\n'.repeat(100)}\nFrom b Fri Nov 27 03:41:00 2026\nSubject: small\n`,
    );
    for (const cuts of [[], [7, 50, 51, 120, 200]]) {
      const messages = splitInChunks(raw, cuts, 40);
      expect(messages.map((m) => [m.raw.toString(), m.truncated])).toEqual([
        [`Subject: big\n\n${'y\n'.repeat(100)}`.slice(0, 40), true],
        ['Subject: small\n', false],
      ]);
    }
  });

  it('nothing in, nothing out; text before the first separator is no message', () => {
    expect(splitMboxBuffer(Buffer.alloc(0))).toEqual([]);
    expect(texts(splitMboxBuffer(Buffer.from('junk\n\nFrom a b\nSubject: s\n')))).toEqual(['Subject: s\n']);
  });
});
