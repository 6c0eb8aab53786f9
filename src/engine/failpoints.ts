/**
 * Failpoints: named places in a run (and in an import) where a test wants to stop it, exactly
 * there. The code calls `at(point)`, a hook it is given, and waits for what the hook returns:
 *
 * - without a hook (the default) nothing happens;
 * - the CLI maps NEWSLETTER_FAILPOINTS to a hook that prints `failpoint:NAME` on stderr and stops
 *   the process with SIGSTOP (src/cli/failpoints.ts): the end-to-end tests then kill it (SIGKILL)
 *   or resume it (SIGCONT);
 * - an in-process test returns a promise it resolves when it wants the run to go on
 *   (test/helpers/engine-deps.ts, `FailpointHolds`).
 *
 * This is how tests hit "after the claim commits" without sleeps or luck.
 */
export const FAILPOINTS = [
  'before-build',
  'after-build',
  'after-begin-sending',
  'after-claim',
  'after-send-before-record',
  'after-record',
  // After the rate limiter's wait, right before the lease check and the hand-over.
  'before-hand-over',
  // recipients import (src/store/staged-import.ts): after each staging batch (no lock held),
  // after the last one (nothing published yet), and inside the publish (holding the write lock).
  'import-batch-staged',
  'import-staged',
  'import-publishing',
] as const;
export type Failpoint = (typeof FAILPOINTS)[number];

/**
 * Called each time the code reaches `point`; the code goes on once the returned promise settles.
 * A hook called inside a synchronous transaction (SQLite's publish) cannot be waited for there:
 * it may stop the process (SIGSTOP does, synchronously) but not hold it with a promise.
 */
export type FailpointHook = (point: Failpoint) => Promise<void>;
