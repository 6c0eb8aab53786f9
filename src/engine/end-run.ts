/**
 * Step 11 of a run: close it so that none of its rows stays `claimed`, whatever the path, errors
 * included (promise 2). The store's `endRun` does it in one transaction: known outcomes not yet
 * recorded are written, rows handed over without a known outcome become `unknown`, and the rest
 * were provably never handed over and go back to `retry`.
 */
import type { SendDueDeps } from './deps.js';
import type { SendDueResult } from './result.js';
import type { Unsettled } from './unsettled.js';

/**
 * Returns the error that kept the run from closing (the run row then stays open, and the next
 * run's expiry settles its rows once the lease has passed), or null.
 */
export async function endRun(
  deps: SendDueDeps,
  runId: number,
  unsettled: Unsettled,
  result: SendDueResult,
  error: unknown,
): Promise<unknown> {
  const outcome = error ? 'error' : (deps.stop.reason ?? 'ok');
  try {
    const settlement = await deps.store.endRun(
      runId,
      {
        outcome,
        counts: result.counts,
        error: error ? String((error as Error).message ?? error) : deps.stop.detail,
        outcomes: unsettled.outcomes,
        handedOver: [...unsettled.handedOver],
      },
      deps.now(),
    );
    for (const key of ['sent', 'failed', 'retry', 'unknown', 'skipped'] as const)
      result.counts[key] += settlement.recorded[key];
    result.counts.unknown += settlement.unknown;
    if (settlement.settled && (settlement.unknown > 0 || settlement.released > 0))
      deps.events({ type: 'run-settled', runId, unknown: settlement.unknown, released: settlement.released });
    return null;
  } catch (thrown) {
    return thrown;
  }
}
