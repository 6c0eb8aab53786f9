/**
 * The idle cron run's questions, asked of a SQLite file without loading the whole store (see
 * src/cli/idle.ts), in one query: is the schema current, is the database bound to this host, is
 * anything due or sending? The answers are SqliteStore's (schemaVersion, getMeta('host_id'),
 * dueNewsletters, sendingNewsletters); test/integration/idle-probe.test.ts holds them to it.
 * Read-only, and anything unexpected (a missing file, an old schema) is simply "not idle".
 */
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';

// Required, not imported: Node's ESM import of a CommonJS package parses its sources for named
// exports first, about 2 ms of the idle minute's budget. And the addon is named, when it is where
// an install puts it, rather than searched for (another millisecond).
const require = createRequire(import.meta.url);
const ADDON = 'better-sqlite3/build/Release/better_sqlite3.node';

function nativeBinding(): { nativeBinding?: string } {
  try {
    return { nativeBinding: require.resolve(ADDON) };
  } catch {
    return {};
  }
}

// migration-files.ts's folder and file pattern, without loading it (one module less to load every
// minute); test/integration/idle-probe.test.ts holds the two to the same answers.
const MIGRATIONS_DIR = new URL('../../../migrations/sqlite/', import.meta.url);

export interface IdleProbe {
  file: string;
  busyTimeoutMs: number;
  hostId: string;
  now: number;
}

/** True only when a run would find nothing to do and nothing to refuse. */
export function probeIdle(probe: IdleProbe): boolean {
  const Database: typeof import('better-sqlite3') = require('better-sqlite3');
  const db = new Database(probe.file, {
    readonly: true,
    fileMustExist: true,
    timeout: probe.busyTimeoutMs,
    ...nativeBinding(),
  });
  try {
    const row = db
      .prepare(
        `SELECT (SELECT max(version) FROM schema_migrations) AS version,
                (SELECT value FROM meta WHERE key = 'host_id') AS host,
                EXISTS (SELECT 1 FROM newsletters
                        WHERE (status = 'scheduled' AND scheduled_at <= ?) OR status = 'sending') AS work`,
      )
      .get(probe.now) as { version: number | null; host: string | null; work: number };
    const latest = Math.max(
      0,
      ...readdirSync(MIGRATIONS_DIR)
        .filter((file) => /^\d{3}_[\w-]+\.sql$/.test(file))
        .map((file) => Number(file.slice(0, 3))),
    );
    return row.version === latest && row.host === probe.hostId && row.work === 0;
  } finally {
    db.close();
  }
}
