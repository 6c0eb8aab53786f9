/**
 * Why a run stops claiming. The first reason wins; in-flight messages always finish and are recorded.
 *
 * Two kinds. A budget (`--max-messages`, `--max-seconds`) or a used-up hourly quota only ends the
 * claiming: what is already claimed was counted against them and still goes out. Every other
 * reason (a signal, the server, the lease, the lock) also stops handing over: what is claimed and
 * not yet handed over goes back to `retry` untouched (`handOverStopped`).
 */
export type StopReason =
  | 'budget'
  | 'signal'
  | 'throttled'
  | 'unreachable'
  | 'fatal'
  | 'lease-lost'
  | 'lock-compromised'
  /** The sending account's hourly quota (NEWSLETTER_HOURLY_LIMIT) is used up for this hour. */
  | 'quota';

/** Reasons that end the claiming only. */
const CLAIMING_ONLY: ReadonlySet<StopReason> = new Set(['budget', 'quota']);

export class StopController {
  private current: { reason: StopReason; detail: string } | null = null;
  private halted = false;

  stop(reason: StopReason, detail: string): void {
    this.current ??= { reason, detail };
    if (!CLAIMING_ONLY.has(reason)) this.halted = true;
  }

  /** No more claims. */
  get stopped(): boolean {
    return this.current !== null;
  }

  /** No more hand-overs either: some reason other than a budget or the quota was given. */
  get handOverStopped(): boolean {
    return this.halted;
  }

  get reason(): StopReason | null {
    return this.current?.reason ?? null;
  }

  get detail(): string | null {
    return this.current?.detail ?? null;
  }
}
