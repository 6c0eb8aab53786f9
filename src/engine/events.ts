/** What the engine reports as it works; the CLI decides what to show (terminal, JSON lines, nothing). */
export type EngineEvent =
  | { type: 'run-started'; runId: number; hostId: string; pid: number }
  /** PostgreSQL: this host's clock is off the database's (positive: behind). Leases do not mind. */
  | { type: 'clock-skew'; skewMs: number }
  | { type: 'runs-expired'; runs: number; unknown: number; stranded: number; cancelledRetries: number }
  | { type: 'newsletter-built'; newsletterId: number; subject: string }
  | { type: 'newsletter-build-failed'; newsletterId: number; reason: string }
  | { type: 'newsletter-taken-by-another-run'; newsletterId: number }
  /** `schedule --at LATER` or a cancel while the body was being built: the operator won. */
  | {
      type: 'newsletter-changed-during-build';
      newsletterId: number;
      status: string;
      scheduledAt: number | null;
    }
  /** A store call met a busy or restarting database and waits (up to the lease's end). */
  | { type: 'database-busy'; method: string; detail: string }
  /** The run ended holding rows: handed over → unknown, never handed over → back to retry. */
  | { type: 'run-settled'; runId: number; unknown: number; released: number }
  | { type: 'batch-claimed'; newsletterId: number; claimed: number; skipped: number }
  | {
      type: 'outcomes-recorded';
      newsletterId: number;
      sent: number;
      failed: number;
      retry: number;
      unknown: number;
      /** Of `failed`, the addresses suppressed with it (a 5.1.x reply): list hygiene. */
      hardBounces: number;
      refused: number;
    }
  | { type: 'newsletter-sent'; newsletterId: number }
  | { type: 'stopping'; reason: string; detail: string }
  | { type: 'run-ended'; runId: number; outcome: string };

export type EventSink = (event: EngineEvent) => void;
