/**
 * `newsletter status --prometheus`: the few numbers worth an alert, for node_exporter's textfile
 * collector. A cron line writes them to a temporary file and renames it into the collector's
 * folder (README, "Monitoring"), so the collector never reads half a file. Nothing is printed
 * but the metrics; a database that cannot be read fails the command (non-zero exit, no rename),
 * and the file's age (node_textfile_mtime_seconds) then says the numbers went stale.
 */
import { quotaWindow } from '../../domain/quota.js';
import type { Millis, RunInfo } from '../../domain/types.js';
import type { Context } from '../context.js';
import { withStore } from '../context.js';
import { println } from '../output.js';
import { type Gauge, textfile } from '../prometheus.js';

/**
 * Runs that did what they were started for: sent until done, or until the budget (--max-messages,
 * --max-seconds) or the hourly quota said stop. Runs stopped by errors, throttling, an
 * unreachable relay, a lost lease or a signal are not.
 */
const SUCCESSFUL_OUTCOMES = new Set(['ok', 'budget', 'quota']);

/** How many runs are looked at for the last successful one (newest first). */
const RUNS_LOOKED_AT = 1000;

export async function prometheusCommand(context: Context): Promise<void> {
  const now = Date.now();
  const gauges = await withStore(context, { readonly: true }, async (store) => {
    const newsletters = await store.listNewsletters();
    let unknown = 0;
    for (const newsletter of newsletters) unknown += (await store.counts(newsletter.id)).unknown;
    const quota = context.config.quota;
    return metrics({
      now,
      due: newsletters.filter(
        (n) => n.status === 'scheduled' && n.scheduledAt !== null && n.scheduledAt <= now,
      ).length,
      sending: newsletters.filter((n) => n.status === 'sending').length,
      unknown,
      runs: await store.listRuns(RUNS_LOOKED_AT),
      quota: quota ? { ...quota, used: await store.quotaUsed(quota.account, quotaWindow(now).start) } : null,
    });
  });
  println(textfile(gauges).trimEnd());
}

interface Observed {
  now: Millis;
  due: number;
  sending: number;
  unknown: number;
  /** Newest first. */
  runs: readonly RunInfo[];
  quota: { account: string; hourlyLimit: number; used: number } | null;
}

export function metrics(seen: Observed): Gauge[] {
  const ended = seen.runs.filter((run) => run.endedAt !== null);
  const lastRun = ended[0] ?? null;
  const lastSuccess = ended.find((run) => SUCCESSFUL_OUTCOMES.has(run.outcome ?? ''));
  const one = (value: number) => [{ value }];
  const gauges: Gauge[] = [
    {
      name: 'newsletter_due',
      help: 'Newsletters scheduled for now or earlier that no run has begun sending.',
      samples: one(seen.due),
    },
    { name: 'newsletter_sending', help: 'Newsletters in the sending state.', samples: one(seen.sending) },
    {
      name: 'newsletter_unknown_deliveries',
      help: 'Deliveries whose fate is unknown, over all newsletters: a person must reconcile them.',
      samples: one(seen.unknown),
    },
    {
      name: 'newsletter_last_run_failed_deliveries',
      help: 'Deliveries that failed in the last finished send-due run.',
      samples: lastRun ? one(lastRun.counts.failed) : [],
    },
    {
      name: 'newsletter_seconds_since_last_successful_run',
      help: 'Seconds since the last send-due run that ended ok (or at its budget or quota). Idle minutes register no run.',
      samples: lastSuccess
        ? one(Math.max(0, Math.round((seen.now - (lastSuccess.endedAt as number)) / 1000)))
        : [],
    },
  ];
  if (seen.quota) {
    const labels = { account: seen.quota.account };
    gauges.push(
      {
        name: 'newsletter_quota_used',
        help: 'Messages of the hourly quota (NEWSLETTER_HOURLY_LIMIT) used in the current clock hour.',
        samples: [{ labels, value: seen.quota.used }],
      },
      {
        name: 'newsletter_quota_limit',
        help: 'The hourly quota (NEWSLETTER_HOURLY_LIMIT).',
        samples: [{ labels, value: seen.quota.hourlyLimit }],
      },
    );
  }
  return gauges;
}
