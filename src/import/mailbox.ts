/**
 * The messages of a mailbox, for `newsletter bounces import PATH`, read and never changed (a
 * Maildir's new/ messages stay new; nothing is moved, flagged or deleted):
 *
 * - a file starting with `From ` is an mbox: messages begin at a `From ` line at the start of the
 *   file or after a blank line; `>From ` lines are unescaped one level (mboxrd);
 * - any other file is one message (.eml);
 * - a folder with `cur/` or `new/` is a Maildir: every file in new/ then cur/, by name;
 * - any other folder: every `*.eml` file in it, by name (not recursive).
 *
 * An mbox is read whole: a bounce mailbox is expected to be emptied after each import.
 */
import { open, readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { InputError } from '../domain/errors.js';

export interface MailboxMessage {
  /** Where it came from, for messages: `bounces.mbox#3`, `Maildir/new/1700000000.x.host`. */
  source: string;
  raw: Buffer;
}

export type MailboxKind = 'mbox' | 'maildir' | 'eml';

export async function mailboxKind(target: string): Promise<MailboxKind> {
  const info = await statOrThrow(target);
  if (info.isDirectory()) {
    const sub = await Promise.all(['cur', 'new'].map((name) => isDirectory(path.join(target, name))));
    return sub.some(Boolean) ? 'maildir' : 'eml';
  }
  const head = await readHead(target);
  return head.startsWith('From ') ? 'mbox' : 'eml';
}

export async function* readMailbox(target: string): AsyncGenerator<MailboxMessage> {
  const info = await statOrThrow(target);
  if (info.isDirectory()) {
    const kind = await mailboxKind(target);
    const files =
      kind === 'maildir'
        ? [...(await filesIn(path.join(target, 'new'))), ...(await filesIn(path.join(target, 'cur')))]
        : (await filesIn(target)).filter((file) => file.toLowerCase().endsWith('.eml'));
    for (const file of files) yield { source: file, raw: await readFile(file) };
    return;
  }
  const raw = await readFile(target);
  if (raw.subarray(0, 5).toString('latin1') !== 'From ') {
    yield { source: target, raw };
    return;
  }
  let n = 0;
  for (const message of splitMbox(raw)) {
    n += 1;
    yield { source: `${target}#${n}`, raw: message };
  }
}

/**
 * The messages of an mbox, without their `From ` separator lines. Worked on as latin1 text, which
 * maps every byte to one character and back, so 8-bit bodies come out byte for byte.
 */
export function splitMbox(raw: Buffer): Buffer[] {
  const text = raw.toString('latin1');
  // A separator: `From ` at the start of the file, or at the start of a line after a blank line.
  const separator = /(?:^|\n\r?\n)From [^\n]*\n/g;
  const starts: { at: number; body: number }[] = [];
  for (const match of text.matchAll(separator)) {
    // The blank line before a separator belongs to neither message.
    const lead = match[0].startsWith('From ') ? 0 : match[0].indexOf('From ');
    starts.push({ at: match.index + lead, body: match.index + match[0].length });
  }
  const messages: Buffer[] = [];
  starts.forEach((start, i) => {
    // Each message is followed by a blank line, the last one too: it belongs to no message.
    const end = trimBlankLine(text, i + 1 < starts.length ? starts[i + 1]!.at : text.length);
    const body = text.slice(start.body, end).replace(/^>(>*From )/gm, '$1');
    if (body.trim() !== '') messages.push(Buffer.from(body, 'latin1'));
  });
  return messages;
}

/** The index before the blank line that ends at `at` (a separator, or the end of the file), if any. */
function trimBlankLine(text: string, at: number): number {
  if (text.slice(at - 4, at) === '\r\n\r\n') return at - 2;
  if (text.slice(at - 2, at) === '\n\n') return at - 1;
  return at;
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

async function readHead(file: string): Promise<string> {
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(5);
    const { bytesRead } = await handle.read(buffer, 0, 5, 0);
    return buffer.subarray(0, bytesRead).toString('latin1');
  } finally {
    await handle.close();
  }
}
