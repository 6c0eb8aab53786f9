/**
 * Where the run lock lives (DESIGN, "Configuration": never a predictable name in a world-writable
 * folder). A lock is only worth having if nobody else can hold it: a lock path another local user
 * can create first, and keep fresh by touching it, stops every cron run with "another run is in
 * progress" and nothing else. So:
 *
 * - NEWSLETTER_LOCK_DIR, when set, is used as given (the operator chose it);
 * - a SQLite database in a folder only its owner can write keeps its lock beside it, where
 *   nobody else can create it;
 * - PostgreSQL (no file of ours to sit beside) and a SQLite database in a folder others can write
 *   (/tmp, a shared group folder) use a private per-user folder: `$RUNTIME_DIRECTORY` under
 *   systemd, else `$XDG_STATE_HOME/newsletter`, else `~/.local/state/newsletter`, created 0700
 *   and refused when someone else could have planted or could replace what is in it.
 */
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { type DatabaseTarget, describeDatabase } from '../domain/database-location.js';
import { othersCanWrite } from './private-files.js';

export interface LockLocation {
  /** The path the lock is named after: the SQLite file, or a stand-in name for PostgreSQL. */
  databasePath: string;
  /** The folder of the lock. */
  lockDir: string;
  /** True for the per-user folder: created 0700 when missing, refused when others could write it. */
  private: boolean;
  /**
   * In the per-user folder, a SQLite database's lock is named after its whole path: two databases
   * called news.db in different shared folders must not share one lock.
   */
  lockName?: string;
}

export interface LockEnvironment {
  RUNTIME_DIRECTORY?: string | undefined;
  XDG_STATE_HOME?: string | undefined;
  HOME?: string | undefined;
}

/** The per-user lock folder, by the rule in the header. */
export function privateLockDir(env: LockEnvironment = process.env): string {
  // systemd may list several folders, colon-separated, when RuntimeDirectory= names several.
  const runtime = env.RUNTIME_DIRECTORY?.split(':')[0];
  if (runtime && path.isAbsolute(runtime)) return runtime;
  // The XDG spec says a relative XDG_STATE_HOME is invalid and must be ignored.
  const state = env.XDG_STATE_HOME;
  if (state && path.isAbsolute(state)) return path.join(state, 'newsletter');
  return path.join(env.HOME || homedir(), '.local', 'state', 'newsletter');
}

/** Where the lock for this database goes, given NEWSLETTER_LOCK_DIR (or null). */
export function lockLocationOf(
  database: DatabaseTarget,
  configuredDir: string | null,
  env: LockEnvironment = process.env,
): LockLocation {
  if (database.kind === 'postgres') {
    // Named from the URL without its password, so that every run of this user against the same
    // database (whatever its working directory) shares one lock.
    const key = createHash('sha256').update(describeDatabase(database)).digest('hex').slice(0, 16);
    const lockDir = configuredDir ?? privateLockDir(env);
    return {
      databasePath: path.join(lockDir, `postgres-${key}.db`),
      lockDir,
      private: configuredDir === null,
    };
  }
  if (configuredDir !== null) return { databasePath: database.path, lockDir: configuredDir, private: false };
  const besideDatabase = path.dirname(database.path);
  if (onlyOwnerCanWrite(besideDatabase)) {
    return { databasePath: database.path, lockDir: besideDatabase, private: false };
  }
  const key = createHash('sha256').update(database.path).digest('hex').slice(0, 16);
  return {
    databasePath: database.path,
    lockDir: privateLockDir(env),
    private: true,
    lockName: `${path.basename(database.path)}-${key}.lock`,
  };
}

/**
 * Why this folder is not private enough for a lock, or null when it is: it must belong to this
 * user and be writable by nobody else. A missing folder is fine (it will be created 0700).
 */
export function privateFolderProblem(dir: string): string | null {
  let stats: ReturnType<typeof statSync>;
  try {
    stats = statSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    return `cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`;
  }
  if (!stats.isDirectory()) return 'is not a folder';
  const uid = process.getuid?.();
  if (uid !== undefined && stats.uid !== uid)
    return `belongs to uid ${stats.uid}, not to this user (uid ${uid})`;
  if (othersCanWrite(stats.mode)) {
    return `can be written by its group or others (mode ${(stats.mode & 0o777).toString(8).padStart(4, '0')})`;
  }
  return null;
}

/** The folder exists, belongs to this user, and nobody else can write it. */
function onlyOwnerCanWrite(dir: string): boolean {
  try {
    const stats = statSync(dir);
    const uid = process.getuid?.();
    return (uid === undefined || stats.uid === uid) && !othersCanWrite(stats.mode);
  } catch {
    // Missing: openSqlite reports that; the lock is not where to say it.
    return true;
  }
}
