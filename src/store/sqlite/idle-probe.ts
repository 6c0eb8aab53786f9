/**
 * The idle cron run's questions, asked of a SQLite file without loading the whole store (see
 * src/cli/idle.ts), in one query: is the schema current, is the database bound to this host, is
 * anything due or sending? The query is put together from the store's own texts (queries.ts: what
 * schemaVersion, getMeta('host_id'), dueNewsletters and sendingNewsletters run) and the latest
 * version from the migration files the store applies (../migration-files.ts), so the quick path
 * cannot drift from the normal one; test/integration/idle-probe.test.ts holds them to it.
 * Read-only, and anything unexpected (a missing file, an old schema) is simply "not idle".
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import BundledDatabase from 'better-sqlite3';
import { latestVersion } from '../migration-files.js';
import { IS_DUE, IS_SENDING, META_VALUE, SCHEMA_VERSION } from './queries.js';

const require = createRequire(import.meta.url);
// The addon is named, when it is where an install puts it, rather than searched for (a
// millisecond of the idle minute).
const ADDON = 'better-sqlite3/build/Release/better_sqlite3.node';

/**
 * In dist/cli/idle-bundle.cjs, the version of better-sqlite3 whose JavaScript (lib/*.js, about a
 * dozen files: some 5 ms of the idle minute to resolve and compile one by one) is bundled with
 * this file: scripts/build-idle-bundle.js writes it in for this name. Undefined everywhere else
 * (dist/, tests), where the installed package is required as usual.
 */
declare const IDLE_BUNDLED_BETTER_SQLITE3: string | undefined;

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
  const { Database, nativeBinding } = sqlite();
  const db = new Database(probe.file, {
    readonly: true,
    fileMustExist: true,
    timeout: probe.busyTimeoutMs,
    ...(nativeBinding === undefined ? {} : { nativeBinding }),
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

/**
 * better-sqlite3, and its addon where an install puts it. The bundled copy of its JavaScript
 * only ever drives the addon of the same version (their interface is internal to the package):
 * with another version installed, or the addon elsewhere, the installed package is required.
 */
function sqlite(): { Database: typeof BundledDatabase; nativeBinding?: string } {
  let addon: string;
  try {
    addon = require.resolve(ADDON);
  } catch {
    return { Database: require('better-sqlite3') };
  }
  const bundled =
    typeof IDLE_BUNDLED_BETTER_SQLITE3 === 'string' &&
    installedVersion(addon) === IDLE_BUNDLED_BETTER_SQLITE3;
  return { Database: bundled ? BundledDatabase : require('better-sqlite3'), nativeBinding: addon };
}

/** The version in the package.json of the package the addon belongs to (build/Release/…). */
function installedVersion(addon: string): string | undefined {
  try {
    return JSON.parse(readFileSync(path.join(addon, '../../../package.json'), 'utf8')).version;
  } catch {
    return undefined;
  }
}
