/**
 * One run of `send-due` (see README.md beside this file for the walk-through):
 * guard → lock → register → expire dead runs → build and begin due newsletters → claim, send,
 * record, renew, repeat → complete from the ledger → close the run.
 *
 * This file holds the order of the steps and what happens on every way out; each step has its
 * own file: clone-guard.ts, lease-keeper.ts, expire-dead-runs.ts, begin.ts, send-newsletter.ts
 * (the claim), send-batch.ts (the lease check, the hand-over, the record), end-run.ts.
 */
import { LockHeldError } from '../domain/errors.js';
import { RateLimiter } from '../domain/rate-limiter.js';
import { beginDueNewsletters } from './begin.js';
import { guardAgainstClone } from './clone-guard.js';
import type { SendDueDeps } from './deps.js';
import { endRun } from './end-run.js';
import { expireDeadRuns } from './expire-dead-runs.js';
import { LeaseKeeper } from './lease-keeper.js';
import { patientStore } from './patient-store.js';
import type { Transport } from './ports.js';
import type { RegisteredRun } from './store.js';
import { emptyResult, type SendDueResult } from './result.js';
import { sendNewsletter } from './send-newsletter.js';
import type { Unsettled } from './unsettled.js';

export type { RenderModule, RunLockHandle, SendDueDeps } from './deps.js';
export type { SendDueOptions } from './options.js';
export type { NewsletterReport, SendDueResult } from './result.js';

export async function sendDue(deps: SendDueDeps): Promise<SendDueResult> {
  const { store, options } = deps;
  const result = emptyResult();

  await guardAgainstClone(store, deps.hostId);

  // Nothing due and nothing sending: leave without a lock, a run row or loading anything heavy.
  const startNow = deps.now();
  if (
    (await store.dueNewsletters(startNow)).length === 0 &&
    (await store.sendingNewsletters()).length === 0
  ) {
    result.idle = true;
    return result;
  }

  const lock = await deps.acquireLock((error) => deps.stop.stop('lock-compromised', error.message));
  if (!lock) {
    throw new LockHeldError('Another send-due run holds the lock on this database; nothing was done.', [
      'It will carry on where this one would have. `newsletter runs` shows who is running.',
    ]);
  }

  let run: RegisteredRun;
  // The lease's countdown starts before the request: the database starts it no earlier.
  const monotonic = deps.monotonic ?? deps.now;
  const askedAt = monotonic();
  try {
    run = await store.registerRun({
      hostId: deps.hostId,
      hostname: deps.hostname,
      pid: deps.pid,
      pidScope: deps.pidScope,
      now: deps.now(),
      leaseMs: options.leaseMs,
    });
  } catch (error) {
    // A busy database: nothing was claimed, so give the lock back before saying so.
    await lock.release().catch(() => undefined);
    throw error;
  }
  result.runId = run.id;
  // Something is due or sending: a ledger thread starts on the other core while this one expires
  // dead runs, loads the renderer and the transport, and builds.
  store.prepareToClaim();
  deps.events({ type: 'run-started', runId: run.id, hostId: deps.hostId, pid: deps.pid });
  if (run.clockSkewMs !== undefined) deps.events({ type: 'clock-skew', skewMs: run.clockSkewMs });
  const lease = new LeaseKeeper({
    store,
    runId: run.id,
    leaseMs: options.leaseMs,
    startedAt: askedAt,
    now: deps.now,
    monotonic,
    stop: deps.stop,
  });
  // From here on every store call waits out a busy or restarting database, up to the lease's end.
  const waits = new Set<string>();
  const runDeps: SendDueDeps = {
    ...deps,
    store: patientStore(store, {
      deadline: () => lease.expiresAt,
      now: monotonic,
      onWait: (method, cause) => {
        if (waits.has(method)) return;
        waits.add(method);
        deps.events({ type: 'database-busy', method, detail: (cause as Error)?.message ?? String(cause) });
      },
    }),
  };
  const unsettled: Unsettled = { handedOver: new Set(), outcomes: [] };
  let transport: Transport | null = null;
  let error: unknown = null;
  try {
    result.expired = await expireDeadRuns(runDeps, run.id);
    const render = await deps.loadRender();
    await beginDueNewsletters(runDeps, render, run.id, result);
    const sending = await runDeps.store.sendingNewsletters();
    const deadline = deps.maxSeconds === null ? null : deps.now() + deps.maxSeconds * 1000;
    const budget = { messages: deps.maxMessages, deadline };
    const limiter = new RateLimiter(options.rate, deps.now());
    for (const newsletter of sending) {
      if (deps.stop.stopped) break;
      transport ??= await deps.loadTransport();
      const report = await sendNewsletter(
        { deps: runDeps, render, transport, limiter, lease, unsettled, runId: run.id, budget, result },
        newsletter,
      );
      result.newsletters.push(report);
    }
  } catch (thrown) {
    error = thrown;
  } finally {
    lease.stopTimer();
    await transport?.close().catch(() => undefined);
    result.stopReason = deps.stop.reason;
    result.stopDetail = deps.stop.detail;
    const ended = await endRun(runDeps, run.id, unsettled, result, error);
    error ??= ended;
    const outcome = error ? 'error' : (deps.stop.reason ?? 'ok');
    deps.events({ type: 'run-ended', runId: run.id, outcome });
    await lock.release().catch(() => undefined);
  }
  if (error) throw error;
  return result;
}
