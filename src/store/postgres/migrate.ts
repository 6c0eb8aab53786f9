/**
 * Numbered SQL migrations (migrations/postgres/NNN_name.sql), applied by `newsletter init` and
 * recorded in schema_migrations. Twenty hosts may run `init` at the same minute: every migration
 * runs inside one transaction that first takes a transaction-scoped advisory lock, so they queue
 * on the lock, the first migrates, and the others find the schema current and change nothing.
 * The lock ends with the transaction: nothing is left on the connection (pgbouncer-safe).
 */
import { DatabaseError } from '../../domain/errors.js';
import { latestVersion as latestVersionOf, migrations as migrationsOf } from '../migration-files.js';
import type { Sql } from './connection.js';

/** pg_advisory_xact_lock key for migrations: "nlmigrat" read as a 64-bit number. Any constant works. */
export const MIGRATION_LOCK_KEY = '7956854941131366772';

export const migrations = () => migrationsOf('postgres');
export const latestVersion = () => latestVersionOf('postgres');

export async function currentVersion(sql: Sql): Promise<number> {
  const [present] = (
    await sql.query<{ present: boolean }>("SELECT to_regclass('schema_migrations') IS NOT NULL AS present")
  ).rows;
  if (!present?.present) return 0;
  const [row] = (
    await sql.query<{ version: number | null }>('SELECT max(version) AS version FROM schema_migrations')
  ).rows;
  return row?.version ?? 0;
}

/** Must run inside a transaction (see PostgresStore's migrate). */
export async function migrate(sql: Sql, where: string, now: number): Promise<{ from: number; to: number }> {
  await sql.query('SELECT pg_advisory_xact_lock($1::bigint)', [MIGRATION_LOCK_KEY]);
  // Read after the lock: whoever held it before us has committed, and READ COMMITTED shows it.
  const from = await currentVersion(sql);
  if (from === 0) await refuseForeignDatabase(sql, where);
  if (from > latestVersion()) {
    throw new DatabaseError(
      `${where} has schema version ${from}, newer than this newsletter (${latestVersion()}).`,
      ['Upgrade newsletter on this host; never run an older version against a newer database.'],
    );
  }
  await sql.query(
    'CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)',
  );
  for (const migration of migrations()) {
    if (migration.version <= from) continue;
    await sql.query(migration.sql);
    await sql.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [
      migration.version,
      migration.name,
      now,
    ]);
  }
  return { from, to: Math.max(from, latestVersion()) };
}

async function refuseForeignDatabase(sql: Sql, where: string): Promise<void> {
  const tables = (
    await sql.query<{ name: string }>(
      `SELECT table_name AS name FROM information_schema.tables
       WHERE table_schema = current_schema() AND table_name <> 'schema_migrations' ORDER BY 1`,
    )
  ).rows;
  if (tables.length > 0) {
    throw new DatabaseError(
      `${where} already holds another application's tables (${tables.map((t) => t.name).join(', ')}).`,
      ['Give newsletter a database of its own; it never writes into a foreign one.'],
    );
  }
}
