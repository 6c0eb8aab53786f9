/**
 * The run's lease, kept alive. A run's claims last `leaseMs` without renewal; past that, another
 * run may expire this one and turn its `claimed` rows into `unknown` (promise 2), so this run
 * must not hand anything over once its lease may have run out (promise 1).
 *
 * Renewals go to the database on a timer and between batches (`renewIfDue`); the query and its
 * fence are the store's `renewLease`. `validFor()` is the local view checked right before each
 * hand-over (send-batch.ts): a message is only sent while the last renewal that the database
 * accepted still covers it, with a margin for the time the hand-over itself takes.
 *
 * Which clock. The database keeps the lease on its own clock (PostgreSQL: the server's, so that
 * hosts whose clocks disagree still agree; store.ts). Here it is a countdown of `leaseMs` from the
 * moment the registration or renewal was *asked for*, on a monotonic clock (`deps.monotonic`):
 * the database started the same lease no earlier than that moment, and two clocks tick at the same
 * rate, so this view ends no later than the database's. A wall clock stepped by NTP, or a host
 * whose clock is minutes off, moves neither.
 */
import type { Millis } from '../domain/types.js';
import type { StopController } from './stop.js';
import type { SendStore } from './store.js';

export interface LeaseKeeperDeps {
  /** The store itself, not the patient one: a renewal that meets a busy database is retried by the timer. */
  store: SendStore;
  runId: number;
  leaseMs: Millis;
  /** On `monotonic`: when the registration that set the first lease was asked for. */
  startedAt: Millis;
  /** The wall clock, passed to the store as the renewal's `now`. */
  now: () => Millis;
  /** The countdown's clock: only ever forward (performance.now() in the CLI). */
  monotonic: () => Millis;
  stop: StopController;
}

export class LeaseKeeper {
  private validUntil: Millis;
  private lastRenewal: Millis;
  private timer: NodeJS.Timeout | null;
  private lost = false;

  constructor(private readonly deps: LeaseKeeperDeps) {
    this.validUntil = deps.startedAt + deps.leaseMs;
    this.lastRenewal = deps.startedAt;
    const every = Math.max(250, Math.floor(deps.leaseMs / 3));
    this.timer = setInterval(() => void this.renew(), every);
    this.timer.unref();
  }

  private get margin(): number {
    return Math.min(5000, Math.floor(this.deps.leaseMs / 4));
  }

  /**
   * The end of the lease as the database last accepted it, on the monotonic clock: a run waits
   * for a busy database until then (patient-store.ts, given the same clock).
   */
  get expiresAt(): Millis {
    return this.validUntil;
  }

  /** Whether a message may be handed over now: the lease covers it, with the margin. */
  validFor(): boolean {
    return !this.lost && this.deps.monotonic() < this.validUntil - this.margin;
  }

  async renewIfDue(): Promise<boolean> {
    if (this.lost) return false;
    if (this.deps.monotonic() - this.lastRenewal < this.deps.leaseMs / 3) return this.validFor();
    return this.renew();
  }

  async renew(): Promise<boolean> {
    if (this.lost) return false;
    const askedAt = this.deps.monotonic();
    let renewed: boolean;
    try {
      renewed = await this.deps.store.renewLease(this.deps.runId, this.deps.now(), this.deps.leaseMs);
    } catch {
      // A busy database: keep the old lease; validFor() stops sending before it runs out.
      return this.validFor();
    }
    if (!renewed) {
      this.lost = true;
      this.deps.stop.stop('lease-lost', 'this run was ended by another run after its lease expired');
      return false;
    }
    // Renewals may overlap (the timer and a batch): a slow one must not shorten a later one's.
    this.validUntil = Math.max(this.validUntil, askedAt + this.deps.leaseMs);
    this.lastRenewal = Math.max(this.lastRenewal, askedAt);
    return true;
  }

  stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
