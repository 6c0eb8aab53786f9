/**
 * Splits an mbox into its messages as its bytes arrive, chunk by chunk, so that `bounces import`
 * reads a mailbox of any size in bounded memory: what is held is the message being read (at most
 * MAX_MESSAGE_BYTES of it) and one partial line, never the file. The rules are the classic ones:
 *
 * - a message begins at a `From ` line at the start of the file, or right after a blank line
 *   (`\n` or `\r\n`); the separator line itself belongs to no message;
 * - the blank line before a separator (and the one ending the file) belongs to no message;
 * - a line `>From `, `>>From `, … loses one `>` (mboxrd; for mboxo files, which quote only
 *   `From `, this is the same for every line a writer quoted);
 * - content before the first separator, and messages that are only whitespace, are dropped.
 *
 * Bytes are never decoded: 8-bit bodies come out byte for byte, and a chunk may end anywhere,
 * even inside `\r\n` or inside the word `From` (test/unit/mbox-splitter.test.ts feeds every cut).
 */

/** A larger message keeps only its first bytes (reports come first; the returned mail after). */
export const MAX_MESSAGE_BYTES = 10 * 1024 * 1024;

/** A partial line longer than this is not carried to the next chunk but taken as it stands. */
const CARRY_LIMIT = 64 * 1024;

const LF = 0x0a;
const CR = 0x0d;
const GT = 0x3e;
const FROM = Buffer.from('From ', 'latin1');

export interface MboxMessage {
  raw: Buffer;
  /** The message was longer than MAX_MESSAGE_BYTES: `raw` holds its beginning only. */
  truncated: boolean;
}

export class MboxSplitter {
  private carry: Buffer | null = null;
  /** The next bytes continue a long line already judged: its content, or a separator's rest. */
  private midLine: 'content' | 'separator' | null = null;
  private atFileStart = true;
  private lastLineBlank = false;
  /** Length of the blank line that ended the message so far (1 or 2 bytes), 0 if none. */
  private trailingBlank = 0;
  private inMessage = false;
  private parts: Buffer[] = [];
  private size = 0;
  private truncated = false;
  private readonly maxBytes: number;

  constructor(options: { maxMessageBytes?: number } = {}) {
    this.maxBytes = options.maxMessageBytes ?? MAX_MESSAGE_BYTES;
  }

  /** The messages completed by this chunk. */
  push(chunk: Buffer): MboxMessage[] {
    const out: MboxMessage[] = [];
    const data = this.carry ? Buffer.concat([this.carry, chunk]) : chunk;
    this.carry = null;
    let pos = 0;
    // Bytes of ordinary lines are kept as one run, cut only where a line must change or end a message.
    let runStart = 0;
    while (pos < data.length) {
      const newline = data.indexOf(LF, pos);
      if (newline === -1) break;
      const lineEnd = newline + 1;
      if (this.midLine !== null) {
        if (this.midLine === 'separator') runStart = lineEnd;
        this.midLine = null;
        this.lastLineBlank = false;
        this.trailingBlank = 0;
        pos = lineEnd;
        continue;
      }
      const kind = this.judge(data, pos, lineEnd);
      if (kind === 'separator') {
        this.add(data.subarray(runStart, pos));
        this.finish(out);
        this.inMessage = true;
        runStart = lineEnd;
      } else if (kind === 'unescape') {
        this.add(data.subarray(runStart, pos));
        runStart = pos + 1;
      }
      this.atFileStart = false;
      this.lastLineBlank = kind === 'blank';
      this.trailingBlank = kind === 'blank' ? lineEnd - pos : 0;
      pos = lineEnd;
    }
    this.add(data.subarray(runStart, pos));
    const rest = data.subarray(pos);
    if (this.midLine !== null) {
      // Still inside a long line that began in an earlier chunk: no newline in this one.
      if (this.midLine === 'content') this.add(rest);
    } else if (rest.length <= CARRY_LIMIT) {
      // Copied, so that a short tail does not keep the whole chunk alive.
      if (rest.length > 0) this.carry = Buffer.from(rest);
    } else {
      // A line this long is judged by its beginning, which is all that the rules look at.
      const kind = this.judge(rest, 0, rest.length);
      if (kind === 'separator') {
        this.finish(out);
        this.inMessage = true;
        this.midLine = 'separator';
      } else {
        this.add(kind === 'unescape' ? rest.subarray(1) : rest);
        this.midLine = 'content';
      }
      this.atFileStart = false;
      this.lastLineBlank = false;
      this.trailingBlank = 0;
    }
    return out;
  }

  /** The last message, once the input has ended. */
  end(): MboxMessage[] {
    const out: MboxMessage[] = [];
    const last = this.carry;
    this.carry = null;
    // A last line without its newline (never blank: a blank line is its newline).
    if (last && this.midLine === null) {
      const kind = this.judge(last, 0, last.length);
      if (kind === 'separator') {
        this.finish(out);
        this.inMessage = true;
      } else {
        this.add(kind === 'unescape' ? last.subarray(1) : last);
        this.lastLineBlank = false;
        this.trailingBlank = 0;
      }
    } else if (last && this.midLine === 'content') this.add(last);
    this.finish(out);
    this.inMessage = false;
    this.midLine = null;
    return out;
  }

  private judge(data: Buffer, start: number, end: number): 'separator' | 'unescape' | 'blank' | 'content' {
    const length = end - start;
    const first = data[start];
    // `\n` or `\r\n` alone (a line is judged with its newline, when it has one).
    if ((length === 1 && first === LF) || (length === 2 && first === CR && data[start + 1] === LF))
      return 'blank';
    if (startsWithFrom(data, start, end)) {
      return this.atFileStart || this.lastLineBlank ? 'separator' : 'content';
    }
    if (first === GT) {
      let at = start;
      while (at < end && data[at] === GT) at += 1;
      if (startsWithFrom(data, at, end)) return 'unescape';
    }
    return 'content';
  }

  private add(bytes: Buffer): void {
    if (!this.inMessage || bytes.length === 0 || this.truncated) return;
    const room = this.maxBytes - this.size;
    if (bytes.length > room) {
      this.truncated = true;
      if (room > 0) this.parts.push(bytes.subarray(0, room));
      this.size = this.maxBytes;
      return;
    }
    this.parts.push(bytes);
    this.size += bytes.length;
  }

  private finish(out: MboxMessage[]): void {
    if (this.inMessage) {
      let raw = this.parts.length === 1 ? Buffer.from(this.parts[0]!) : Buffer.concat(this.parts);
      if (!this.truncated && this.trailingBlank > 0 && this.lastLineBlank) {
        raw = raw.subarray(0, raw.length - this.trailingBlank);
      }
      if (!onlyWhitespace(raw)) out.push({ raw, truncated: this.truncated });
    }
    this.parts = [];
    this.size = 0;
    this.truncated = false;
    this.trailingBlank = 0;
  }
}

/** Splits a whole mbox held in memory (small inputs and tests); the stream is readMailbox's. */
export function splitMboxBuffer(raw: Buffer): MboxMessage[] {
  const splitter = new MboxSplitter();
  return [...splitter.push(raw), ...splitter.end()];
}

function startsWithFrom(data: Buffer, start: number, end: number): boolean {
  if (end - start < FROM.length) return false;
  for (let i = 0; i < FROM.length; i++) if (data[start + i] !== FROM[i]) return false;
  return true;
}

function onlyWhitespace(raw: Buffer): boolean {
  for (const byte of raw) {
    // space, tab, CR, LF, vertical tab, form feed
    if (byte !== 0x20 && byte !== 0x09 && byte !== CR && byte !== LF && byte !== 0x0b && byte !== 0x0c)
      return false;
  }
  return true;
}
