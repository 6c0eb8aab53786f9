/**
 * The run's lease, kept alive. A run's claims last `leaseMs` without renewal; past that, another
 * run may expire this one and turn its `claimed` rows into `unknown` (promise 2), so this run
 * must not hand anything over once its lease may have run out (promise 1).
 *
 * Renewals go to the database on a timer and between batches (`renewIfDue`); the query and its
 * fence are the store's `renewLease`. `validFor(now)` is the local view checked right before each
 * hand-over (send-batch.ts): a message is only sent while the last renewal that the database
 * accepted still covers it, with a margin for the time the hand-over itself takes.
 */
import type { Millis } from '../domain/types.js';
import type { StopController } from './stop.js';
import type { SendStore } from './store.js';

export interface LeaseKeeperDeps {
  /** The store itself, not the patient one: a renewal that meets a busy database is retried by the timer. */
  store: SendStore;
  runId: number;
  leaseMs: Millis;
  /** The lease's end as the database set it when the run was registered. */
  leaseUntil: Millis;
  now: () => Millis;
  stop: StopController;
}

export class LeaseKeeper {
  private validUntil: Millis;
  private lastRenewal: Millis;
  private timer: NodeJS.Timeout | null;
  private lost = false;

  constructor(private readonly deps: LeaseKeeperDeps) {
    this.validUntil = deps.leaseUntil;
    this.lastRenewal = deps.now();
    const every = Math.max(250, Math.floor(deps.leaseMs / 3));
    this.timer = setInterval(() => void this.renew(), every);
    this.timer.unref();
  }

  private get margin(): number {
    return Math.min(5000, Math.floor(this.deps.leaseMs / 4));
  }

  /** The end of the lease as the database last accepted it: a run waits for the database until then. */
  get expiresAt(): Millis {
    return this.validUntil;
  }

  validFor(now: Millis): boolean {
    return !this.lost && now < this.validUntil - this.margin;
  }

  async renewIfDue(): Promise<boolean> {
    if (this.lost) return false;
    if (this.deps.now() - this.lastRenewal < this.deps.leaseMs / 3) return this.validFor(this.deps.now());
    return this.renew();
  }

  async renew(): Promise<boolean> {
    if (this.lost) return false;
    const now = this.deps.now();
    let renewed: boolean;
    try {
      renewed = await this.deps.store.renewLease(this.deps.runId, now, this.deps.leaseMs);
    } catch {
      // A busy database: keep the old lease; validFor() stops sending before it runs out.
      return this.validFor(now);
    }
    if (!renewed) {
      this.lost = true;
      this.deps.stop.stop('lease-lost', 'this run was ended by another run after its lease expired');
      return false;
    }
    this.validUntil = now + this.deps.leaseMs;
    this.lastRenewal = now;
    return true;
  }

  stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
