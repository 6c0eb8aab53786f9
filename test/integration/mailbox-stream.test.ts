/**
 * `readMailbox` streams (src/import/mailbox.ts): an mbox file of several MiB is read in 1 MiB
 * chunks, and messages that straddle those reads, `From ` separators cut in two included, come
 * out byte for byte; a message over 10 MiB keeps its first 10 MiB and says so, in an mbox and as a
 * single .eml file alike; the next message is whole. (The splitter's rules at every cut point:
 * test/unit/mbox-splitter.test.ts; memory for a 1 GB mbox: `node bench/run.js --only=bounces`.)
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { readMailbox } from '../../src/import/mailbox.js';
import { MAX_MESSAGE_BYTES } from '../../src/import/mbox-splitter.js';
import { mbox } from '../helpers/dsn.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'newsletter-mailbox-stream-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function all(target: string) {
  const out: { source: string; raw: Buffer; truncated?: boolean }[] = [];
  for await (const message of readMailbox(target)) out.push(message);
  return out;
}

/** Messages of sizes chosen so that separators fall on and around the 1 MiB read boundaries. */
function messagesAround(boundary: number): string[] {
  const messages: string[] = [];
  let offset = 0;
  for (let i = 0; offset < boundary * 3 + 5000; i++) {
    const header = `Subject: message ${i}\nMessage-ID: <m${i}@example.net>\n\n`;
    // Sizes that walk the separator across the boundary a byte or two at a time, then jump.
    const size = i % 7 === 0 ? 300_000 + i : 997 + (i % 13);
    const line =
      i % 2 === 0 ? `From the body of ${i}, quoted in the file\n` : `>From a line quoted once already\n`;
    const body = `${line}${'z'.repeat(Math.max(0, size - header.length - line.length - 1))}\n`;
    messages.push(header + body);
    offset += header.length + body.length + 50;
  }
  return messages;
}

it('an mbox of several MiB, read in chunks: every message whole, in order', async () => {
  const messages = messagesAround(1024 * 1024);
  const file = path.join(dir, 'bounces.mbox');
  await writeFile(file, mbox(messages));
  const read = await all(file);
  expect(read.length).toBe(messages.length);
  read.forEach((message, i) => {
    expect(message.source).toBe(`${file}#${i + 1}`);
    expect(message.truncated).toBe(false);
    expect(message.raw.toString()).toBe(messages[i]);
  });
});

it('a message over 10 MiB keeps its beginning, says so, and the next one is whole', async () => {
  const big = `Subject: big\n\n${'b'.repeat(MAX_MESSAGE_BYTES + 1000)}\n`;
  const small = 'Subject: small\n\nafter the big one\n';
  const file = path.join(dir, 'big.mbox');
  await writeFile(file, mbox([big, small]));
  const read = await all(file);
  expect(read.map((m) => [m.raw.length, m.truncated])).toEqual([
    [MAX_MESSAGE_BYTES, true],
    [small.length, false],
  ]);
  expect(read[0]!.raw.toString('latin1', 0, 20)).toBe(big.slice(0, 20));
  expect(read[1]!.raw.toString()).toBe(small);

  const eml = path.join(dir, 'big.eml');
  await writeFile(eml, big);
  const [one] = await all(eml);
  expect([one!.raw.length, one!.truncated]).toEqual([MAX_MESSAGE_BYTES, true]);
  await writeFile(eml, small);
  expect((await all(eml)).map((m) => [m.raw.toString(), m.truncated ?? false])).toEqual([[small, false]]);
});
