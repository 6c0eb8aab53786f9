/**
 * `newsletter backup`: what a copy of the database must be, and what to say when there is none to
 * make here. Pure.
 *
 * A SQLite database in WAL mode is two files that change together: committed transactions live
 * in the -wal file until a checkpoint moves them into the main file, and the main file alone may
 * be mid-checkpoint. `cp newsletter.db` while cron sends can therefore copy a torn or stale
 * database. The store copies through SQLite's online backup instead, which reads one snapshot
 * through the WAL.
 */
import { InputError } from './errors.js';

export function backupNeedsPgDump(where: string): InputError {
  return new InputError(`newsletter backup copies SQLite databases; ${where} is PostgreSQL.`, [
    'Use pg_dump, which takes a consistent snapshot while runs go on: `pg_dump --format=custom --file=newsletter.dump "$NEWSLETTER_DATABASE"`, and `pg_restore` to bring it back.',
  ]);
}

export function backupTargetExists(file: string): InputError {
  return new InputError(`${file} already exists: a backup never overwrites a file.`, [
    'Choose a new name (e.g. with the date: newsletter-$(date +%F).db), or remove the old copy first.',
  ]);
}

export function backupFolderMissing(file: string, folder: string): InputError {
  return new InputError(`Cannot write ${file}: the folder ${folder} does not exist.`, [
    'Create the folder first (owner-only: `mkdir -m 700 …`), or choose another path.',
  ]);
}

export function backupIsDamaged(file: string, findings: readonly string[]): string {
  return `The copy in ${file} failed PRAGMA integrity_check (${findings.slice(0, 3).join('; ')}); it was removed.`;
}
