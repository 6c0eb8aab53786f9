/**
 * Failpoints: named places in a run where a crash test wants the process to stop, exactly there.
 * With NEWSLETTER_FAILPOINTS=after-claim (a comma-separated list), the run prints
 * `failpoint:after-claim` on stderr and stops itself with SIGSTOP; the test then kills it (SIGKILL)
 * or resumes it (SIGCONT). Off unless the variable is set, and then only for the named points.
 * This is how the crash tests hit "after the claim commits" without sleeps or luck.
 */
export const FAILPOINTS = [
  'before-build',
  'after-build',
  'after-begin-sending',
  'after-claim',
  'after-send-before-record',
  'after-record',
  'before-hand-over',
  // recipients import (src/store/staged-import.ts): after each staging batch (no lock held),
  // after the last one (nothing published yet), and inside the publish (holding the write lock).
  'import-batch-staged',
  'import-staged',
  'import-publishing',
] as const;
export type Failpoint = (typeof FAILPOINTS)[number];

const active = new Set(
  (process.env.NEWSLETTER_FAILPOINTS ?? '')
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean),
);
const hits = new Map<string, number>();

/** `name` stops at the first hit; `name@N` at the Nth hit only. */
export function failpoint(name: Failpoint): void {
  if (active.size === 0) return;
  const count = (hits.get(name) ?? 0) + 1;
  hits.set(name, count);
  if (!(active.has(`${name}@${count}`) || (count === 1 && active.has(name)))) return;
  process.stderr.write(`failpoint:${name}\n`);
  process.kill(process.pid, 'SIGSTOP');
}
