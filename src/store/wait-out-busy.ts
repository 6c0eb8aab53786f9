/**
 * Waiting out a busy database: the one retry loop that `send-due` (src/engine/patient-store.ts)
 * and `serve` share. A call that meets SQLite's write lock held past the busy timeout (an import
 * publishing, a backup, another command), or a PostgreSQL server that is restarting, busy or out
 * of reach, is tried again with growing, jittered pauses until it succeeds, fails for good, or the
 * caller's time is up. Then the caller decides: a run gives up past its lease, `serve` answers 503
 * with Retry-After so that the mail provider tries again later.
 *
 * Only errors that say "nothing happened, try again" are waited out (./transient.ts); anything
 * else is a bug or a broken database and fails at once.
 */
import { setTimeout as pause } from 'node:timers/promises';
import { isTransientDatabaseError } from './transient.js';

export interface BusyPolicy {
  /** The clock `until` is read on (tests pass a fake one; default: Date.now). */
  now?: () => number;
  /** When to stop trying: the next attempt must be able to start before it. */
  until: () => number;
  /** Default: isTransientDatabaseError. */
  isTransient?: (error: unknown) => boolean;
  /** Told of every transient failure before the next attempt. */
  onBusy?: (busy: { attempt: number; waitedMs: number; error: unknown }) => void;
}

/** The database stayed busy until the policy's time was up; the last transient error is the cause. */
export class StillBusyError extends Error {
  readonly waitedMs: number;
  readonly attempts: number;
  constructor(waitedMs: number, attempts: number, cause: unknown) {
    super(`the database was still busy after ${Math.round(waitedMs)} ms (${attempts} attempts)`, { cause });
    this.name = 'StillBusyError';
    this.waitedMs = waitedMs;
    this.attempts = attempts;
  }
}

const FIRST_PAUSE_MS = 50;
const LONGEST_PAUSE_MS = 2000;

/** Runs `attempt` until it succeeds, fails for good, or the policy's time is up (StillBusyError). */
export async function waitOutBusy<T>(attempt: () => Promise<T>, policy: BusyPolicy): Promise<T> {
  const now = policy.now ?? Date.now;
  const isTransient = policy.isTransient ?? isTransientDatabaseError;
  const started = now();
  let pauseMs = FIRST_PAUSE_MS;
  for (let tries = 1; ; tries++) {
    try {
      return await attempt();
    } catch (error) {
      if (!isTransient(error)) throw error;
      // Each SQLite attempt may itself have waited the whole busy timeout: the clock counts it.
      const at = now();
      if (at + pauseMs >= policy.until()) throw new StillBusyError(at - started, tries, error);
      policy.onBusy?.({ attempt: tries, waitedMs: at - started, error });
      // Jitter: several processes held up by the same writer should not all come back at once.
      await pause(pauseMs * (0.75 + Math.random() / 2));
      pauseMs = Math.min(pauseMs * 2, LONGEST_PAUSE_MS);
    }
  }
}
