/**
 * Numbered SQL migrations (migrations/sqlite/NNN_name.sql), applied in order by `newsletter init`,
 * each in its own IMMEDIATE transaction and recorded in schema_migrations.
 */
import type Database from 'better-sqlite3';
import { DatabaseError } from '../../domain/errors.js';
import { latestVersion as latestVersionOf, migrations as migrationsOf } from '../migration-files.js';
import { SCHEMA_VERSION } from './queries.js';

export const migrations = () => migrationsOf('sqlite');
export const latestVersion = () => latestVersionOf('sqlite');

export function currentVersion(db: Database.Database): number {
  const table = db
    .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
    .get();
  if (!table) return 0;
  const row = db.prepare(SCHEMA_VERSION).get() as {
    version: number | null;
  };
  return row.version ?? 0;
}

export function migrate(db: Database.Database, file: string, now: number): { from: number; to: number } {
  const from = currentVersion(db);
  if (from === 0) refuseForeignDatabase(db, file);
  if (from > latestVersion()) {
    throw new DatabaseError(
      `${file} has schema version ${from}, newer than this newsletter (${latestVersion()}).`,
      ['Upgrade newsletter on this host; never run an older version against a newer database.'],
    );
  }
  db.exec(
    'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)',
  );
  for (const migration of migrations()) {
    const apply = db.transaction(() => {
      // Re-checked inside the write lock: two `init`s started together migrate once.
      if (currentVersion(db) >= migration.version) return;
      db.exec(migration.sql);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(
        migration.version,
        migration.name,
        now,
      );
    });
    apply.immediate();
  }
  return { from, to: currentVersion(db) };
}

function refuseForeignDatabase(db: Database.Database, file: string): void {
  const tables = db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    .all() as { name: string }[];
  if (tables.length > 0) {
    throw new DatabaseError(
      `${file} already holds another application's tables (${tables.map((t) => t.name).join(', ')}).`,
      ['Choose a new file for NEWSLETTER_DATABASE; newsletter never writes into a foreign database.'],
    );
  }
}
