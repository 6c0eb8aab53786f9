/**
 * NEWSLETTER_FAILPOINTS, the end-to-end tests' way to stop a real process at a named point
 * (src/engine/failpoints.ts). With `NEWSLETTER_FAILPOINTS=after-claim` (a comma-separated list) the
 * process prints `failpoint:after-claim` on stderr and stops itself with SIGSTOP; the test then
 * kills it (SIGKILL) or resumes it (SIGCONT). `name` stops at the first hit, `name@N` at the Nth
 * hit only. Unset or empty: no hook at all.
 */
import type { Failpoint, FailpointHook } from '../engine/failpoints.js';

export function failpointsFrom(variable: string | undefined): FailpointHook | undefined {
  const active = new Set(
    (variable ?? '')
      .split(',')
      .map((name) => name.trim())
      .filter(Boolean),
  );
  if (active.size === 0) return undefined;
  const hits = new Map<Failpoint, number>();
  // Async for the hook's type, but everything happens before it returns: the process stops inside
  // the call, so a caller that cannot wait (a synchronous transaction) still stops right there.
  return async (point) => {
    const count = (hits.get(point) ?? 0) + 1;
    hits.set(point, count);
    if (!(active.has(`${point}@${count}`) || (count === 1 && active.has(point)))) return;
    process.stderr.write(`failpoint:${point}\n`);
    process.kill(process.pid, 'SIGSTOP');
  };
}
