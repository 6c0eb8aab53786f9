/**
 * The claim's fsync, off the event loop.
 *
 * A claim must be on disk before any of its messages is handed over: a claim a power cut could take
 * back would let the next run send again what this one sent (claim.ts). SQLite's own way,
 * synchronous=FULL, fsyncs the WAL inside the commit, and better-sqlite3 is synchronous: for the
 * millisecond or so the disk takes, the whole process stops, and with it the SMTP connections
 * that carry the batch before (the engine overlaps two batches: src/engine/send-newsletter.ts).
 *
 * So the claim commits with synchronous=NORMAL (its frames are in the WAL, safe from a crash of
 * this process), and then `sync()` fsyncs the WAL file through a descriptor of our own, on libuv's
 * thread pool, while the event loop carries on; the claim is returned only once that fsync is
 * done. An fsync flushes the file, whichever descriptor asks, so the claim's frames and every
 * commit before them are on disk, exactly as FULL would have left them. The first time, the
 * folder is fsynced too, as SQLite does for a WAL file it creates. Only in WAL mode: a database in
 * another journal mode (not one `init` made) keeps committing claims at FULL (`walFile` is null).
 */
import { type FileHandle, open } from 'node:fs/promises';
import path from 'node:path';
import type { SqliteDb } from './db.js';

export class WalSync {
  private handle: Promise<FileHandle> | null = null;

  /** For the store's database file; null when the connection is not in WAL mode. */
  static forConnection(c: SqliteDb, file: string): WalSync | null {
    const mode = String(c.db.pragma('journal_mode', { simple: true })).toLowerCase();
    return mode === 'wal' ? new WalSync(`${file}-wal`) : null;
  }

  private constructor(readonly walFile: string) {}

  /** Resolves once everything committed so far is on disk. */
  async sync(): Promise<void> {
    if (!this.handle) {
      const opening = openAndSyncFolder(this.walFile);
      this.handle = opening;
      // A failed open is tried again next time, not remembered.
      opening.catch(() => {
        if (this.handle === opening) this.handle = null;
      });
    }
    await (await this.handle).sync();
  }

  async close(): Promise<void> {
    const handle = this.handle;
    this.handle = null;
    await (await handle?.catch(() => null))?.close();
  }
}

async function openAndSyncFolder(walFile: string): Promise<FileHandle> {
  const handle = await open(walFile, 'r+');
  const folder = await open(path.dirname(walFile), 'r');
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
  return handle;
}

/**
 * Runs a write with synchronous=NORMAL: committed to the WAL (safe from a crash of this process)
 * but not fsynced by SQLite. Then the connection is at FULL again, whether the write succeeded or
 * threw, so that no other write of the store commits without its fsync.
 */
export function withoutFsync<T>(c: SqliteDb, write: () => T): T {
  c.sql('PRAGMA synchronous = NORMAL').run();
  try {
    return write();
  } finally {
    c.sql('PRAGMA synchronous = FULL').run();
  }
}
