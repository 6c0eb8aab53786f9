/**
 * Opening a SQLite database the way the promises need it: WAL (readers never block the writer),
 * synchronous=FULL for every write of the store, except the send path's: outcome writes commit at
 * NORMAL (the next claim's fsync carries them: fence.ts), and a claim commits at NORMAL and then
 * fsyncs the WAL itself, off the event loop, before it returns (wal-sync.ts),
 * a busy timeout (a second writer waits a little, then fails clearly), foreign keys on.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { DatabaseError } from '../../domain/errors.js';
import { createEmptyPrivateFileSync, restrictToOwnerSync } from '../../host/private-files.js';

export interface OpenOptions {
  /** init: create the file when missing. Everything else: the file must exist. */
  create: boolean;
  /** --dry-run and read-only views: nothing can be written, not even by mistake. */
  readonly: boolean;
  busyTimeoutMs: number;
}

export function openSqlite(file: string, options: OpenOptions): Database.Database {
  if (!options.create && !existsSync(file)) {
    throw new DatabaseError(`No database at ${file}.`, [
      'Create it with `newsletter init`, or point NEWSLETTER_DATABASE (or --database) at the right file.',
    ]);
  }
  if (options.create && !existsSync(path.dirname(file))) {
    throw new DatabaseError(`Cannot create ${file}: the folder ${path.dirname(file)} does not exist.`, [
      'Create the folder first, or choose another NEWSLETTER_DATABASE path.',
    ]);
  }
  if (existsSync(file) && statSync(file).isDirectory()) {
    throw new DatabaseError(`${file} is a folder, not a database file.`, [
      'Set NEWSLETTER_DATABASE to a file path.',
    ]);
  }
  // Subscriber data is owner-only whatever the umask: SQLite would create the file 0644 under the
  // usual umask 022. Created empty at 0600 first, it is taken as a new database, and SQLite gives
  // the -wal and -shm files it makes beside it on every later open the database file's mode.
  const creating = options.create && !options.readonly && !existsSync(file);
  if (creating) {
    try {
      createEmptyPrivateFileSync(file);
    } catch (error) {
      throw new DatabaseError(`Cannot create ${file}: ${(error as Error).message}`, [
        'Check that the folder is writable by this user, or choose another NEWSLETTER_DATABASE path.',
      ]);
    }
  }
  let db: Database.Database;
  try {
    db = new Database(file, {
      readonly: options.readonly,
      fileMustExist: !options.create,
      timeout: options.busyTimeoutMs,
    });
  } catch (error) {
    throw describeSqliteError(error, file);
  }
  try {
    // WAL is a property of the file, set once by `init`; a command run against a file nobody has
    // initialised must not change it on its way to refusing.
    if (options.create) db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    // Touch the schema so that "not a database" shows up here, not in the middle of a command.
    db.prepare('SELECT count(*) FROM sqlite_master').get();
    // Belt and braces for a SQLite built to ignore the database file's mode for its side files.
    if (creating) restrictToOwnerSync([file, `${file}-wal`, `${file}-shm`]);
  } catch (error) {
    db.close();
    throw describeSqliteError(error, file);
  }
  return db;
}

/** Turns better-sqlite3's error codes into messages that say what to do. */
export function describeSqliteError(error: unknown, file: string): Error {
  const code = (error as { code?: string }).code ?? '';
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
    return new DatabaseError(`${file} is not a usable SQLite database (${code}).`, [
      'Point NEWSLETTER_DATABASE at the newsletter database, or run `newsletter init` with a new path.',
    ]);
  }
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new DatabaseError(`${file} is locked by another writer for longer than the busy timeout.`, [
      'Another newsletter command (or a backup tool) is writing. Try again, or raise NEWSLETTER_BUSY_TIMEOUT.',
    ]);
  }
  if (
    code.startsWith('SQLITE_CANTOPEN') ||
    code.startsWith('SQLITE_READONLY') ||
    code.startsWith('SQLITE_PERM')
  ) {
    return new DatabaseError(`Cannot open ${file} for writing (${code}).`, [
      'Check that the file and its folder are writable by this user (SQLite also writes -wal and -shm files beside it).',
    ]);
  }
  if (code === 'SQLITE_FULL' || code.startsWith('SQLITE_IOERR')) {
    return new DatabaseError(`Cannot write ${file} (${code}).`, [
      'Check free disk space and the file system.',
    ]);
  }
  return error instanceof Error ? error : new Error(String(error));
}
