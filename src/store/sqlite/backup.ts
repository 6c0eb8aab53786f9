/**
 * `newsletter backup` on SQLite: a consistent copy taken while cron keeps sending, through
 * SQLite's online backup API (better-sqlite3's `db.backup()`), never a file copy (why:
 * src/domain/backup.ts).
 *
 * The copy is made in one backup step. SQLite restarts a backup from its first page whenever
 * another connection writes to the source between two steps, so the default of 100 pages per
 * step could never finish a large database that cron writes to every few seconds; one step reads
 * one snapshot (WAL: readers never block the writer, so runs go on meanwhile) and cannot be
 * restarted. The copy goes to a private temporary file beside the target, is read back with
 * `PRAGMA integrity_check`, flushed to disk, and only then renamed into place: FILE is either a
 * whole, checked backup or absent.
 */
import { closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { backupFolderMissing, backupIsDamaged, backupTargetExists } from '../../domain/backup.js';
import { DatabaseError } from '../../domain/errors.js';
import { createEmptyPrivateFileSync, restrictToOwnerSync } from '../../host/private-files.js';
import type { BackupResult } from '../store.js';

/** sqlite3_backup_step's page count for "everything in this step" (a C int). */
const ALL_PAGES = 0x7fffffff;

export async function backupSqlite(source: Database.Database, file: string): Promise<BackupResult> {
  if (existsSync(file)) throw backupTargetExists(file);
  if (!existsSync(path.dirname(file))) throw backupFolderMissing(file, path.dirname(file));
  const partial = path.join(path.dirname(file), `.${path.basename(file)}.partial-${process.pid}`);
  const sideFiles = [`${partial}-journal`, `${partial}-wal`, `${partial}-shm`];
  // Created empty at 0600 first: SQLite writes into it and keeps its mode (and gives its
  // journal the same), so the subscriber data is never readable by others, whatever the umask.
  createEmptyPrivateFileSync(partial);
  try {
    const progress = await source.backup(partial, { progress: () => ALL_PAGES });
    const integrity = checkCopy(partial);
    if (integrity.length !== 1 || integrity[0] !== 'ok')
      throw new DatabaseError(backupIsDamaged(file, integrity), [
        'Run `newsletter doctor` on the database itself; its integrity check says whether the source is damaged.',
      ]);
    restrictToOwnerSync([partial]);
    flush(partial);
    renameSync(partial, file);
    flush(path.dirname(file));
    return { file, bytes: statSync(file).size, pages: progress.totalPages, integrity };
  } catch (error) {
    for (const leftover of [partial, ...sideFiles]) rmSync(leftover, { force: true });
    throw error;
  }
}

/** Opens the copy on its own and reads every page back; closing it leaves no -wal or -shm. */
function checkCopy(file: string): string[] {
  const copy = new Database(file, { fileMustExist: true });
  try {
    return (copy.pragma('integrity_check') as { integrity_check: string }[]).map(
      (row) => row.integrity_check,
    );
  } finally {
    copy.close();
  }
}

/** fsync: the rename must not reach the disk before the data it names. */
function flush(fileOrFolder: string): void {
  const fd = openSync(fileOrFolder, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
