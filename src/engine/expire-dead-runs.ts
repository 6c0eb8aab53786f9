/**
 * Step 7 of a run: end the runs that are dead, so that nobody stays `claimed` forever (promise 2):
 * their `claimed` rows become `unknown`, never resent on a guess. The store's `expireRuns` does it
 * in one transaction, which also heals what older versions could leave behind.
 *
 * Two ways a run is dead: its lease passed (on the database's clock, with several hosts), or it
 * is a run of this very host whose process is gone: the shortcut that spares waiting for the
 * lease after a crash. A pid is only evidence where it was recorded, so the shortcut also needs the
 * same pid scope (boot id and pid namespace, src/host/pid-scope.ts): two containers sharing a
 * hostname, or two machines given the same NEWSLETTER_HOST_ID, or the same host after a reboot,
 * never end each other's runs by a pid lookup; those wait for the lease.
 */
import { CloneRefusedError } from '../domain/errors.js';
import type { RunInfo } from '../domain/types.js';
import type { SendDueDeps } from './deps.js';
import type { ExpiredRuns } from './store.js';

type ExpireDeps = Pick<
  SendDueDeps,
  'store' | 'hostId' | 'hostname' | 'pidScope' | 'now' | 'events' | 'isProcessAlive'
>;

export async function expireDeadRuns(deps: ExpireDeps, ownRunId: number): Promise<ExpiredRuns> {
  // A run of this host whose process is gone is dead now; waiting for its lease would only delay.
  const dead = (await deps.store.liveRuns())
    .filter((run) => run.id !== ownRunId && sameProcessSpace(deps, run))
    .filter((run) => !deps.isProcessAlive(run.pid))
    .map((run) => run.id);
  const expired = await deps.store.expireRuns(deps.now(), dead);
  if (expired.runs > 0 || expired.stranded > 0 || expired.cancelledRetries > 0)
    deps.events({ type: 'runs-expired', ...expired });
  // After the expiry, so that "live" is the store's verdict on the lease (the database's clock on
  // PostgreSQL), not this host's clock: every run still open here holds a lease.
  refuseTwinHost(deps, await deps.store.liveRuns(), ownRunId);
  return expired;
}

/** Whether `run`'s pid can be looked up here: same host id, hostname and pid scope, all known. */
function sameProcessSpace(deps: ExpireDeps, run: RunInfo): boolean {
  return (
    run.hostId === deps.hostId &&
    run.hostname === deps.hostname &&
    deps.pidScope !== null &&
    run.pidScope === deps.pidScope
  );
}

/**
 * Two machines that present the same host id (a clone whose identity was not regenerated, or one
 * NEWSLETTER_HOST_ID copied to several hosts) would take each other's runs for their own: the
 * dead-process shortcut above would end a live run of the other machine because its pid does not
 * exist here (the pid scope now prevents that too). With a shared (PostgreSQL) database that shows
 * as a run still open after the expiry (so its lease holds), with this host id but another
 * hostname: this run stops before it claims anything. Runs that start at the same moment may both
 * stop; that is the safe side, and the message says what to fix.
 */
function refuseTwinHost(deps: ExpireDeps, live: RunInfo[], ownRunId: number): void {
  const twin = live.find(
    (run) => run.id !== ownRunId && run.hostId === deps.hostId && run.hostname !== deps.hostname,
  );
  if (!twin) return;
  throw new CloneRefusedError(
    `Host id ${deps.hostId} is in use by a live run on another machine (${twin.hostname}, run ${twin.id}, pid ${twin.pid}): refusing to send from ${deps.hostname}.`,
    [
      'Two machines present the same host id: a cloned server, or the same NEWSLETTER_HOST_ID set on both.',
      'Give each host its own id (unset NEWSLETTER_HOST_ID so that it is detected, or set a distinct value per host);',
      '`newsletter runs` shows which hosts are running.',
    ],
  );
}
