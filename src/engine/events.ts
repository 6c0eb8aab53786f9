/** What the engine reports as it works; the CLI decides what to show (terminal, JSON lines, nothing). */
export type EngineEvent =
  | { type: 'run-started'; runId: number; hostId: string; pid: number }
  | { type: 'runs-expired'; runs: number; unknown: number }
  | { type: 'newsletter-built'; newsletterId: number; subject: string }
  | { type: 'newsletter-build-failed'; newsletterId: number; reason: string }
  | { type: 'newsletter-taken-by-another-run'; newsletterId: number }
  | { type: 'batch-claimed'; newsletterId: number; claimed: number; skipped: number }
  | {
      type: 'outcomes-recorded';
      newsletterId: number;
      sent: number;
      failed: number;
      retry: number;
      unknown: number;
      refused: number;
    }
  | { type: 'newsletter-sent'; newsletterId: number }
  | { type: 'stopping'; reason: string; detail: string }
  | { type: 'run-ended'; runId: number; outcome: string };

export type EventSink = (event: EngineEvent) => void;
