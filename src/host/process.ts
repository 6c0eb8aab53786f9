/**
 * Facts about processes on this host, for deciding whether a run recorded in the database is dead.
 */
import os from 'node:os';

/**
 * Whether a process with this pid exists on this host. Signal 0 checks without delivering
 * anything. EPERM means the process exists but belongs to another user, so it is alive.
 *
 * A recycled pid makes a dead run look alive; that errs on the safe side (its rows wait for the
 * lease to expire instead of being declared dead at once). Only meaningful for pids recorded on
 * this same host.
 */
export function isProcessAlive(pid: number): boolean {
  // 0 and negative pids address process groups, which would always "exist".
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EPERM') return true;
    if (code === 'ESRCH') return false;
    throw error;
  }
}

/** The name runs record beside the host id, for people reading `runs` and `status`. */
export function hostname(): string {
  return os.hostname();
}
