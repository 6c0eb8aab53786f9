/**
 * The claim, within the sending account's hourly quota (NEWSLETTER_HOURLY_LIMIT).
 *
 * Before each claim the run reserves what it wants from the quota row that every run on every
 * host shares (SendStore.reserveQuota, atomic), claims at most what was granted, and gives back
 * what the claim did not use (fewer recipients left, rows written `skipped`, rows taken by
 * another host). Due retries are claimed like new recipients, so every attempt counts. When nothing is
 * granted the run stops claiming ('quota'); the rest waits for a later hour.
 *
 * Reserving before claiming, rather than counting sends afterwards, is what makes the limit hold
 * across hosts: a count after the fact would let every host start a batch on the same last free
 * messages. The error is always on the safe side: a reservation is given back only when it was
 * certainly not claimed; a claimed message that was then never sent (the run stopped mid-batch,
 * a crash between the reserve and the give-back) stays counted for the hour.
 *
 * A batch reserved just before the hour turns counts in the hour it was reserved in, though its
 * last messages may leave seconds after the turn.
 */
import { quotaWindow } from '../domain/quota.js';
import type { Millis } from '../domain/types.js';
import type { EventSink } from './events.js';
import type { HourlyQuota } from './options.js';
import type { StopController } from './stop.js';
import type { ClaimRequest, ClaimResult, SendStore } from './store.js';

export interface QuotaDeps {
  /** Null: no quota; the claim is SendStore.claimBatch as it is. */
  quota: HourlyQuota | null;
  store: SendStore;
  stop: StopController;
  events: EventSink;
  now: () => Millis;
}

/** SendStore.claimBatch, within the quota when one is configured. */
export async function claimWithinQuota(deps: QuotaDeps, request: ClaimRequest): Promise<ClaimResult> {
  const quota = deps.quota;
  if (!quota) return deps.store.claimBatch(request);
  const window = quotaWindow(request.now);
  const granted = await deps.store.reserveQuota(
    quota.account,
    window.start,
    request.limit,
    quota.hourlyLimit,
    request.now,
  );
  if (granted === 0) {
    const detail = `the hourly quota of ${quota.account} (${quota.hourlyLimit} messages) is used up until ${new Date(window.end).toISOString()}`;
    deps.stop.stop('quota', detail);
    deps.events({ type: 'stopping', reason: 'quota', detail });
    // Nothing claimed: the engine then asks the ledger whether the newsletter is complete, as
    // after any empty claim, and stops claiming.
    return { claimed: [], skipped: 0, lastSubscriberId: request.afterSubscriberId, stillSending: true };
  }
  let claim: ClaimResult;
  try {
    claim = await deps.store.claimBatch({ ...request, limit: granted });
  } catch (error) {
    // The claim's transaction did not commit, or this run fails now and sends nothing more.
    await deps.store.releaseQuota(quota.account, window.start, granted, deps.now()).catch(() => undefined);
    throw error;
  }
  const unused = granted - claim.claimed.length;
  if (unused > 0) await deps.store.releaseQuota(quota.account, window.start, unused, deps.now());
  return claim;
}
