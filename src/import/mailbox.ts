/**
 * The messages of a mailbox, for `newsletter bounces import PATH`, read and never changed (a
 * Maildir's new/ messages stay new; nothing is moved, flagged or deleted):
 *
 * - a file starting with `From ` is an mbox: messages begin at a `From ` line at the start of the
 *   file or after a blank line; `>From ` lines are unescaped one level (mboxrd);
 *   src/import/mbox-splitter.ts has the rules;
 * - any other file is one message (.eml);
 * - a folder with `cur/` or `new/` is a Maildir: every file in new/ then cur/, by name;
 * - any other folder: every `*.eml` file in it, by name (not recursive).
 *
 * Everything is streamed: an mbox is read in chunks and split as it arrives, so a mailbox of any
 * size (the 2 GB mbox a forgotten cron line grows) is read in bounded memory: the message at hand
 * and one chunk. A message longer than MAX_MESSAGE_BYTES (10 MiB, about Postfix's
 * message_size_limit) keeps its beginning only, where a report's parts are, and says so
 * (`truncated`).
 */
import { createReadStream } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { InputError } from '../domain/errors.js';
import { MAX_MESSAGE_BYTES, MboxSplitter, splitMboxBuffer } from './mbox-splitter.js';

export interface MailboxMessage {
  /** Where it came from, for messages: `bounces.mbox#3`, `Maildir/new/1700000000.x.host`. */
  source: string;
  raw: Buffer;
  /** Longer than MAX_MESSAGE_BYTES: `raw` is its beginning. */
  truncated?: boolean;
}

export type MailboxKind = 'mbox' | 'maildir' | 'eml';

/** How much of an mbox is read at a time. */
const CHUNK_BYTES = 1024 * 1024;

export async function mailboxKind(target: string): Promise<MailboxKind> {
  const info = await statOrThrow(target);
  if (info.isDirectory()) {
    const sub = await Promise.all(['cur', 'new'].map((name) => isDirectory(path.join(target, name))));
    return sub.some(Boolean) ? 'maildir' : 'eml';
  }
  const head = await readHead(target, 5);
  return head.buffer.toString('latin1').startsWith('From ') ? 'mbox' : 'eml';
}

export async function* readMailbox(target: string): AsyncGenerator<MailboxMessage> {
  const info = await statOrThrow(target);
  if (info.isDirectory()) {
    const kind = await mailboxKind(target);
    const files =
      kind === 'maildir'
        ? [...(await filesIn(path.join(target, 'new'))), ...(await filesIn(path.join(target, 'cur')))]
        : (await filesIn(target)).filter((file) => file.toLowerCase().endsWith('.eml'));
    for (const file of files) yield await oneMessage(file);
    return;
  }
  if ((await mailboxKind(target)) !== 'mbox') {
    yield await oneMessage(target);
    return;
  }
  let n = 0;
  const splitter = new MboxSplitter();
  const stream = createReadStream(target, { highWaterMark: CHUNK_BYTES });
  try {
    for await (const chunk of stream) {
      for (const message of splitter.push(chunk as Buffer)) {
        n += 1;
        yield { source: `${target}#${n}`, ...message };
      }
    }
  } finally {
    // A consumer that stops early (an error) must not leave the file open.
    stream.destroy();
  }
  for (const message of splitter.end()) {
    n += 1;
    yield { source: `${target}#${n}`, ...message };
  }
}

/**
 * The messages of an mbox held in memory, without their `From ` separator lines (for small
 * inputs and tests; readMailbox streams).
 */
export function splitMbox(raw: Buffer): Buffer[] {
  return splitMboxBuffer(raw).map((message) => message.raw);
}

/** One file as one message: its first MAX_MESSAGE_BYTES. */
async function oneMessage(file: string): Promise<MailboxMessage> {
  const head = await readHead(file, MAX_MESSAGE_BYTES + 1);
  if (head.buffer.length > MAX_MESSAGE_BYTES) {
    return { source: file, raw: head.buffer.subarray(0, MAX_MESSAGE_BYTES), truncated: true };
  }
  return { source: file, raw: head.buffer };
}

async function filesIn(folder: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(folder);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const files: string[] = [];
  for (const name of names.filter((n) => !n.startsWith('.')).sort()) {
    const file = path.join(folder, name);
    if ((await stat(file)).isFile()) files.push(file);
  }
  return files;
}

async function statOrThrow(target: string) {
  try {
    return await stat(target);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new InputError(
      code === 'ENOENT' ? `${target} does not exist.` : `Cannot read ${target} (${code ?? String(error)}).`,
      ['Give an mbox file, a Maildir folder (with cur/ and new/), an .eml file or a folder of .eml files.'],
    );
  }
}

async function isDirectory(target: string): Promise<boolean> {
  try {
    return (await stat(target)).isDirectory();
  } catch {
    return false;
  }
}

/** The first `bytes` bytes of a file (fewer when it is shorter). */
async function readHead(file: string, bytes: number): Promise<{ buffer: Buffer }> {
  const handle = await open(file, 'r');
  try {
    const size = Math.min(bytes, (await handle.stat()).size);
    const buffer = Buffer.alloc(size);
    let filled = 0;
    while (filled < size) {
      const { bytesRead } = await handle.read(buffer, filled, size - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return { buffer: buffer.subarray(0, filled) };
  } finally {
    await handle.close();
  }
}
