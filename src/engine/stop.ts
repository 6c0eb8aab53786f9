/**
 * Why a run stops claiming. The first reason wins; in-flight messages always finish and are recorded.
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

export class StopController {
  private current: { reason: StopReason; detail: string } | null = null;

  stop(reason: StopReason, detail: string): void {
    this.current ??= { reason, detail };
  }

  get stopped(): boolean {
    return this.current !== null;
  }

  get reason(): StopReason | null {
    return this.current?.reason ?? null;
  }

  get detail(): string | null {
    return this.current?.detail ?? null;
  }
}
