/** What a run of `send-due` reports back; the CLI picks the exit code and the words from it. */
import { type AttemptTally, emptyAttemptTally } from '../domain/failure-alarm.js';
import type { RunCounts } from '../domain/types.js';
import type { StopReason } from './stop.js';
import type { ExpiredRuns } from './store.js';

export interface NewsletterReport {
  id: number;
  subject: string;
  result:
    | 'began'
    | 'build-failed'
    | 'taken-by-another-run'
    | 'changed-during-build'
    | 'sent'
    | 'continuing'
    | 'cancelled';
  reason?: string;
}

export interface SendDueResult {
  idle: boolean;
  runId: number | null;
  counts: RunCounts;
  newsletters: NewsletterReport[];
  stopReason: StopReason | null;
  stopDetail: string | null;
  /** Outcome writes refused by the fence (this run had lost its claim). */
  refusedWrites: number;
  expired: ExpiredRuns;
  /** The run's attempts, and each batch's: what src/domain/failure-alarm.ts judges. */
  attempts: AttemptTally;
  batches: AttemptTally[];
}

export function emptyResult(): SendDueResult {
  return {
    idle: false,
    runId: null,
    counts: { sent: 0, failed: 0, retry: 0, unknown: 0, skipped: 0 },
    newsletters: [],
    stopReason: null,
    stopDetail: null,
    refusedWrites: 0,
    expired: { runs: 0, unknown: 0, stranded: 0, cancelledRetries: 0 },
    attempts: emptyAttemptTally(),
    batches: [],
  };
}
