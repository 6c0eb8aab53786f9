/**
 * Buffers that carry a message's bytes to the socket, reused from one message to the next; one
 * set per SMTP connection (smtp-session.ts).
 *
 * The SMTP client writes a message as one buffer (one socket write costs less than one per chunk,
 * docs/benchmarks.md). `Buffer.concat` made a fresh ~50 kB buffer per message: about 20 µs of
 * allocation and copying, and garbage for the collector, where copying the same pieces into a
 * buffer at hand costs about 2.5 µs (issue 17, bench/NOTES.md).
 *
 * A buffer handed to a socket write belongs to the socket until that write's callback: the kernel
 * may still be reading it (a write the socket could not finish at once). So a buffer comes back to
 * the free list only from the callback of a write that succeeded; a failed or never-finished write
 * (the connection died) keeps its buffer out of circulation, and the collector takes it. Nothing
 * is ever overwritten while a write may still read it. (On one connection the protocol orders it
 * too: the next message is written after the server's 354 for it, which comes after the server
 * read the whole message before.)
 */
import type { Piece } from './mime.js';

/** Buffers of this size or more are made for the occasional large message, and not kept. */
const KEEP_AT_MOST_BYTES = 4 * 1024 * 1024;
/** Free buffers kept for reuse: a connection has at most two messages on the wire at once. */
const KEEP_AT_MOST = 8;
const GRAIN = 16 * 1024;

export interface Gathered {
  /** The bytes: the concatenation of the chunks (a view of a reused buffer), and what was appended. */
  bytes: Buffer;
  /**
   * Appends `text` (UTF-8) after the bytes if the buffer has room for it, and says whether it did
   * (smtp-session.ts: the final "." and the next envelope go in the same socket write as the
   * message). Only before the bytes are handed to a socket write.
   */
  append(text: string): boolean;
  /** The write's callback: the buffer is free again once the socket says the write is done. */
  written: (error?: Error | null) => void;
}

export class WriteBuffers {
  private readonly free: Buffer[] = [];

  /**
   * Copies `pieces`, in order (strings as UTF-8), into a free buffer (or a new one) and returns
   * the bytes; `spare`: bytes of room kept after them for `append`.
   */
  gather(pieces: readonly Piece[], spare = 0): Gathered {
    // A UTF-16 unit is at most 3 bytes of UTF-8 (a pair of them, 4): room enough without
    // measuring each string first.
    let room = spare;
    for (const piece of pieces) room += typeof piece === 'string' ? 3 * piece.length : piece.length;
    const buffer = this.take(room);
    let at = 0;
    for (const piece of pieces) {
      if (typeof piece === 'string') at += buffer.write(piece, at, 'utf8');
      else {
        buffer.set(piece, at);
        at += piece.length;
      }
    }
    let returned = false;
    const gathered: Gathered = {
      bytes: buffer.subarray(0, at),
      append: (text) => {
        if (returned || buffer.length - at < 3 * text.length) return false;
        at += buffer.write(text, at, 'utf8');
        gathered.bytes = buffer.subarray(0, at);
        return true;
      },
      written: (error) => {
        // Once: a failed write's buffer never comes back, whatever is called after.
        if (returned) return;
        returned = true;
        if (!error) this.give(buffer);
      },
    };
    return gathered;
  }

  /** Buffers waiting for reuse (for tests). */
  get freeCount(): number {
    return this.free.length;
  }

  private take(size: number): Buffer {
    for (let i = 0; i < this.free.length; i++) {
      const buffer = this.free[i] as Buffer;
      if (buffer.length >= size) {
        this.free.splice(i, 1);
        return buffer;
      }
    }
    // Not from the shared pool of small buffers (allocUnsafe): this one is reused, and all of it
    // is ours. Only the bytes copied in are ever written, so its old content never leaves.
    return Buffer.allocUnsafeSlow(Math.ceil(Math.max(size, 1) / GRAIN) * GRAIN);
  }

  private give(buffer: Buffer): void {
    if (buffer.length >= KEEP_AT_MOST_BYTES) return;
    if (this.free.length >= KEEP_AT_MOST) {
      // Keep the larger ones: a newsletter's messages are all about the same size.
      let smallest = 0;
      for (let i = 1; i < this.free.length; i++) {
        if ((this.free[i] as Buffer).length < (this.free[smallest] as Buffer).length) smallest = i;
      }
      if ((this.free[smallest] as Buffer).length >= buffer.length) return;
      this.free.splice(smallest, 1);
    }
    this.free.push(buffer);
  }
}
