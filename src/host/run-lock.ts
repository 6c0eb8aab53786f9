/**
 * The run lock: at most one `send-due` per database on this host at a time, taken without waiting
 * (DESIGN, "One run of send-due", step 3).
 *
 * The lock saves work; correctness never depends on it. Two runs that both got past it (a stale
 * takeover of a paused run, a lock folder on another file system, clones with copies of the
 * database) are still kept from sending twice by the database alone: the unique ledger key makes a
 * second claim impossible and every outcome write is fenced by the claiming run. What the lock buys
 * is that the minute-by-minute cron runs do not pile up, build the same body twice or fight over
 * SQLite's single writer while a long send is under way.
 *
 * proper-lockfile takes the lock by creating a directory (mkdir is atomic) and keeps it fresh by
 * touching its mtime every `update` ms; a lock whose mtime is older than `stale` ms belongs to a
 * process that died without cleaning up (SIGKILL, power loss) and is taken over.
 */
import { chmod, readFile, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import { ConfigError } from '../domain/errors.js';
import { privateFolderProblem } from './lock-location.js';
import { makePrivateDir, PRIVATE_DIR_MODE, writePrivateFile } from './private-files.js';
import { isProcessAlive } from './process.js';

/**
 * Why so long: better-sqlite3 is synchronous, and while it waits out SQLite's busy timeout (or a
 * long write transaction, or a slow fsync under `synchronous=FULL`) the event loop is blocked and
 * the timer that refreshes the lock's mtime cannot fire. If `stale` were close to such a pause, a
 * second run would see a live lock as abandoned and take it over while the first is still sending.
 * Two minutes is far above any pause we allow; the price is that after a SIGKILL the next runs
 * report "lock held" for up to two minutes, which costs a couple of cron ticks and nothing else.
 */
export const DEFAULT_STALE_MS = 120_000;
/** Refresh often enough that several refreshes can be missed before the lock looks stale. */
export const DEFAULT_UPDATE_MS = 10_000;

export interface RunLockLocation {
  /** The SQLite file the lock protects. It need not exist yet. */
  databasePath: string;
  /** Where to put the lock; null or absent: beside the database. */
  lockDir?: string | null;
  /**
   * The per-user lock folder (src/host/lock-location.ts): created 0700 when missing, and refused
   * when someone else owns it or could write in it, since they could then hold our lock.
   */
  private?: boolean;
  /** The lock's file name; absent: `<basename of the database>.lock`. */
  lockName?: string;
}

export interface AcquireRunLockOptions extends RunLockLocation {
  staleMs?: number;
  updateMs?: number;
  /**
   * Called (at most once) when the lock was taken from us: its mtime was changed by someone else
   * (a takeover after we looked stale) or its folder vanished. The run must stop claiming, record
   * what is in flight and exit non-zero. Called from a timer: whatever it throws is caught.
   */
  onCompromised: (error: Error) => void;
}

export interface RunLock {
  /** The lock folder (proper-lockfile's lock is a directory). */
  readonly path: string;
  /** The error that compromised the lock, or null while it is still ours. */
  readonly compromised: Error | null;
  /** Gives the lock up. Idempotent; a lock already lost to compromise is simply forgotten. */
  release(): Promise<void>;
}

export interface RunLockState {
  /** True when a fresh lock exists: a live run holds it (or held it less than `stale` ago). */
  held: boolean;
  path: string;
  /** The last refresh, when the lock folder exists. */
  mtime?: Date;
  /** When the lock folder exists: true if it is older than `stale` (left by a dead run). */
  stale?: boolean;
}

/** `<lockDir or dirname(databasePath)>/<lockName or basename(databasePath).lock>`, absolute. */
export function runLockPath(location: RunLockLocation): string {
  const database = path.resolve(location.databasePath);
  const dir = location.lockDir ? path.resolve(location.lockDir) : path.dirname(database);
  return path.join(dir, location.lockName ?? `${path.basename(database)}.lock`);
}

/**
 * Takes the lock, or returns null at once if a live process holds it. Any other failure (the
 * folder is missing or not writable) throws: a run that cannot lock must not quietly run unlocked.
 */
export async function acquireRunLock(options: AcquireRunLockOptions): Promise<RunLock | null> {
  const database = path.resolve(options.databasePath);
  const lockPath = runLockPath(options);
  let compromised: Error | null = null;
  let released = false;

  const onCompromised = (error: Error): void => {
    // proper-lockfile can report a compromise after release (its mtime check was in flight while
    // we removed the folder): that is our own doing, not a takeover.
    if (released) return;
    compromised = error;
    try {
      options.onCompromised(error);
    } catch (thrown) {
      // proper-lockfile calls this from a timer: a throw here would crash the process mid-send,
      // before the run could record what is in flight.
      process.emitWarning(`run lock: onCompromised handler threw: ${String(thrown)}`);
    }
  };

  if (options.private) await ensurePrivateLockFolder(path.dirname(lockPath));
  const ownerPath = `${lockPath}.owner`;
  const take = () =>
    lockfile.lock(database, {
      lockfilePath: lockPath,
      // The database file may not exist yet, and resolving symlinks is not needed: the lock path is
      // derived from the configured path, the same for every run with the same configuration.
      realpath: false,
      retries: 0,
      stale: options.staleMs ?? DEFAULT_STALE_MS,
      update: options.updateMs ?? DEFAULT_UPDATE_MS,
      onCompromised,
    });
  let unlock: () => Promise<void>;
  try {
    try {
      unlock = await take();
    } catch (error) {
      // A lock left by a crashed run of this host would block every run until it turns stale
      // (minutes). Its owner file names the process: if that process is gone, the lock is dead now.
      if ((error as NodeJS.ErrnoException).code !== 'ELOCKED' || !(await ownerIsDead(ownerPath))) throw error;
      await rm(lockPath, { recursive: true, force: true });
      unlock = await take();
    }
    // proper-lockfile's folder is made under the umask; the owner file names our process. Neither
    // is anyone else's business.
    await chmod(lockPath, PRIVATE_DIR_MODE);
    await writePrivateFile(ownerPath, JSON.stringify({ pid: process.pid, hostname: hostname() }));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ELOCKED') return null;
    if (
      code === 'ENOENT' ||
      code === 'ENOTDIR' ||
      code === 'EACCES' ||
      code === 'EPERM' ||
      code === 'EROFS'
    ) {
      throw new ConfigError(`Cannot create the run lock ${lockPath}: ${(error as Error).message}`, [
        `The folder ${path.dirname(lockPath)} must exist and be writable by this user.`,
      ]);
    }
    throw error;
  }

  return {
    path: lockPath,
    get compromised() {
      return compromised;
    },
    async release() {
      if (released) return;
      released = true;
      try {
        // After a takeover (this run was paused past `stale`), the owner file at this path is
        // the new holder's: removing it would hide that run's crash from ownerIsDead().
        if (await ownerIsUs(ownerPath)) await rm(ownerPath, { force: true });
        await unlock();
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        // ERELEASED: compromised earlier; ENOTACQUIRED: someone else's lock now, not ours to remove.
        if (code === 'ERELEASED' || code === 'ENOTACQUIRED') return;
        throw error;
      }
    },
  };
}

/** For `doctor` and `status`: is the lock held, and since when was it last refreshed? */
export async function inspectRunLock(options: RunLockLocation & { staleMs?: number }): Promise<RunLockState> {
  const database = path.resolve(options.databasePath);
  const lockPath = runLockPath(options);
  const held = await lockfile.check(database, {
    lockfilePath: lockPath,
    realpath: false,
    stale: options.staleMs ?? DEFAULT_STALE_MS,
  });
  let mtime: Date;
  try {
    mtime = (await stat(lockPath)).mtime;
  } catch (error) {
    // Released between the two looks: free.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { held: false, path: lockPath };
    throw error;
  }
  return { held, path: lockPath, mtime, stale: !held };
}

/** Creates the per-user lock folder at 0700, or refuses one that is not ours alone. */
async function ensurePrivateLockFolder(dir: string): Promise<void> {
  const refuse = (problem: string): ConfigError =>
    new ConfigError(
      `The run lock folder ${dir} ${problem}: another user could hold the lock and stop every run.`,
      [
        `Remove it or fix it (\`chown $(id -un) ${dir} && chmod 700 ${dir}\`), or set NEWSLETTER_LOCK_DIR to a folder only this user can write.`,
      ],
    );
  const before = privateFolderProblem(dir);
  if (before) throw refuse(before);
  try {
    await makePrivateDir(dir);
  } catch (error) {
    throw new ConfigError(`Cannot create the run lock folder ${dir}: ${(error as Error).message}`, [
      'Set NEWSLETTER_LOCK_DIR (or XDG_STATE_HOME) to a folder this user can create.',
    ]);
  }
  // Looked at again: it may have been created by someone else between the two steps.
  const after = privateFolderProblem(dir);
  if (after) throw refuse(after);
}

/** True when the owner file names this very process. */
async function ownerIsUs(ownerPath: string): Promise<boolean> {
  try {
    const owner = JSON.parse(await readFile(ownerPath, 'utf8')) as { pid?: unknown; hostname?: unknown };
    return owner.hostname === hostname() && owner.pid === process.pid;
  } catch {
    return false;
  }
}

/**
 * True only when the owner file names a process of this host that no longer exists. No owner file
 * (the holder has not written it yet) or an unreadable one means "held": we never guess a lock dead.
 */
async function ownerIsDead(ownerPath: string): Promise<boolean> {
  try {
    const owner = JSON.parse(await readFile(ownerPath, 'utf8')) as { pid?: unknown; hostname?: unknown };
    return owner.hostname === hostname() && typeof owner.pid === 'number' && !isProcessAlive(owner.pid);
  } catch {
    return false;
  }
}
