/**
 * The numbered SQL migrations of one database kind (migrations/sqlite, migrations/postgres):
 * files named NNN_name.sql, applied in order by `newsletter init`. Each store's migrate.ts applies
 * them its own way (a transaction each; on PostgreSQL under an advisory lock); which files there
 * are, and what the latest version is, is decided here once.
 *
 * The idle cron path (src/store/sqlite/idle-probe.ts) asks the latest version here too: this
 * module loads nothing but node:fs and node:url, so it costs the idle minute next to nothing.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export type MigrationKind = 'sqlite' | 'postgres';

const PATTERN = /^\d{3}_[\w-]+\.sql$/;

// src/store and dist/store are both two levels below the package root.
const dirOf = (kind: MigrationKind) => fileURLToPath(new URL(`../../migrations/${kind}/`, import.meta.url));

const files = new Map<MigrationKind, string[]>();
const loaded = new Map<MigrationKind, Migration[]>();

function migrationFiles(kind: MigrationKind): string[] {
  let names = files.get(kind);
  if (!names) {
    names = readdirSync(dirOf(kind))
      .filter((file) => PATTERN.test(file))
      .sort();
    files.set(kind, names);
  }
  return names;
}

/** Every migration with its SQL, in order (read once per process). */
export function migrations(kind: MigrationKind): Migration[] {
  let all = loaded.get(kind);
  if (!all) {
    all = migrationFiles(kind).map((file) => ({
      version: Number(file.slice(0, 3)),
      name: file.replace(/\.sql$/, ''),
      sql: readFileSync(`${dirOf(kind)}${file}`, 'utf8'),
    }));
    loaded.set(kind, all);
  }
  return all;
}

/** From the file names alone: every command asks, only `init` needs the SQL. */
export function latestVersion(kind: MigrationKind): number {
  return Math.max(0, ...migrationFiles(kind).map((file) => Number(file.slice(0, 3))));
}
