/**
 * The idle cron run's questions, asked of a SQLite file without loading the whole store (see
 * src/cli/idle.ts), in one query: is the schema current, is the database bound to this host, is
 * anything due or sending? The query is put together from the store's own texts (queries.ts: what
 * schemaVersion, getMeta('host_id'), dueNewsletters and sendingNewsletters run) and the latest
 * version from the migration files the store applies (../migration-files.ts), so the quick path
 * cannot drift from the normal one; test/integration/idle-probe.test.ts holds them to it.
 * Read-only, and anything unexpected (a missing file, an old schema) is simply "not idle".
 */
import { createRequire } from 'node:module';
import { latestVersion } from '../migration-files.js';
import { IS_DUE, IS_SENDING, META_VALUE, SCHEMA_VERSION } from './queries.js';

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

/** Bound in order: the meta key, then now. */
const IDLE = `SELECT (${SCHEMA_VERSION}) AS version, (${META_VALUE}) AS host,
                     EXISTS (SELECT 1 FROM newsletters n WHERE (${IS_DUE}) OR ${IS_SENDING}) AS work`;

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
    const row = db.prepare(IDLE).get('host_id', probe.now) as {
      version: number | null;
      host: string | null;
      work: number;
    };
    const latest = latestVersion('sqlite');
    return row.version === latest && row.host === probe.hostId && row.work === 0;
  } finally {
    db.close();
  }
}
