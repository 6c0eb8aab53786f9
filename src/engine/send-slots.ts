/**
 * How many messages of one newsletter may be in the transport's hands at once
 * (`Transport.maxInFlight`: three per SMTP connection, since the pool pipelines). Shared by the
 * batches of a newsletter, because two of them overlap: the next batch starts handing over while
 * the last messages of the one before it are still on the wire (send-newsletter.ts). First come,
 * first served, so a batch's messages leave in claim order.
 */
export class SendSlots {
  private free: number;
  private readonly waiting: (() => void)[] = [];

  constructor(size: number) {
    this.free = Math.max(1, size);
  }

  /** Resolves when a slot is this caller's; give it back with `release`. */
  take(): Promise<void> | undefined {
    if (this.free > 0 && this.waiting.length === 0) {
      this.free -= 1;
      return undefined;
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free += 1;
  }
}
