import chalk from 'chalk';
import { NO_REPORTS, type ReportCounts } from '../../store/report-store.js';
import { describeDatabase } from '../../domain/database-location.js';
import { UsageError } from '../../domain/errors.js';
import { quotaWindow } from '../../domain/quota.js';
import type { DeliveryCounts, Millis, Newsletter, RunInfo } from '../../domain/types.js';
import { describeUnsettled, findUnsettled } from '../../domain/unsettled.js';
import { formatInZone } from '../../domain/zone.js';
import { isProcessAlive } from '../../host/process.js';
import type { Context } from '../context.js';
import { withStore } from '../context.js';
import { currentHost } from '../host-identity.js';
import { hardBouncesNote } from '../log.js';
import { printJson, println, table, warn } from '../output.js';
import { parseId, pickCounts, requireNewsletter, summarise } from './newsletters.js';

/**
 * One screen: what is due, what is sending (progress, rate, estimated end), what was sent
 * recently, and what needs a person. `--json` prints the same as one document whose shape is
 * documented in docs/operations.md ("status --json"): keys are only ever added, never renamed.
 */
export async function statusCommand(
  context: Context,
  id: string | undefined,
  options: { json?: boolean; prometheus?: boolean },
): Promise<void> {
  if (options.prometheus) return (await import('./status-prometheus.js')).prometheusCommand(context);
  const now = Date.now();
  const report = await withStore(context, { readonly: true }, async (store) => {
    const all =
      id === undefined ? await store.listNewsletters() : [await requireNewsletter(store, parseId(id))];
    const stranded = new Map((await store.strandedClaims()).map((s) => [s.newsletterId, s.count]));
    // Authenticated bounces and complaints (issue 18), for every newsletter in one query.
    const reports = await store.reportCounts(all.map((newsletter) => newsletter.id));
    const states = await Promise.all(
      all.map(async (newsletter) => {
        const counts = await store.counts(newsletter.id);
        return {
          newsletter,
          counts,
          stranded: stranded.get(newsletter.id) ?? 0,
          reports: reports.get(newsletter.id) ?? NO_REPORTS,
          hardBounces: counts.failed === 0 ? 0 : (await store.hardBounces(newsletter.id, 0)).count,
        };
      }),
    );
    const runs = await store.listRuns(1000);
    const boundHostId = store.kind === 'sqlite' ? await store.getMeta('host_id') : null;
    const quota = context.config.quota;
    const usage = quota
      ? { ...quota, used: await store.quotaUsed(quota.account, quotaWindow(now).start) }
      : null;
    return buildStatus(
      states,
      runs,
      boundHostId,
      now,
      usage,
      processGone(currentHost(context.config).hostId),
    );
  });
  if (options.json) {
    printJson({
      generatedAt: new Date(now).toISOString(),
      database: describeDatabase(context.config.database),
      ...report,
    });
    return;
  }
  if (id !== undefined) {
    printNewsletterTable(report.newsletters);
  } else {
    printScreen(report, now);
  }
  for (const run of report.liveRuns)
    println(
      run.processGone
        ? `not running: run ${run.id} on ${run.hostname} (pid ${run.pid}) since ${shown(run.startedAt)}: its process is gone; the next send-due ends it and holds what it had handed over as unknown`
        : `running: run ${run.id} on ${run.hostname} (pid ${run.pid}) since ${shown(run.startedAt)}`,
    );
  for (const line of report.attention) warn(line);
}

export interface NewsletterState {
  newsletter: Newsletter;
  counts: DeliveryCounts;
  /** Rows `claimed` by a closed or missing run (Store.strandedClaims); 0 when not looked at. */
  stranded?: number;
  /** Failed rows whose address is suppressed (Store.hardBounces): list hygiene; 0 when not looked at. */
  hardBounces?: number;
  /** Deliveries that bounced or were complained about, by authenticated reports; none when not looked at. */
  reports?: ReportCounts;
}

/**
 * Whether an open run's process is known to be gone: only a run of this host can be checked (a
 * pid means nothing on another machine), and a crash leaves its run open until the next
 * send-due ends it (DESIGN, "Runs"), so without this `status` would call it running.
 */
export type ProcessGone = (run: Pick<RunInfo, 'hostId' | 'pid'>) => boolean;

function processGone(thisHostId: string): ProcessGone {
  return (run) => run.hostId === thisHostId && !isProcessAlive(run.pid);
}

/** How many recently sent newsletters the screen (and the JSON) shows. */
const RECENT = 5;
const UPCOMING = 5;
const isoOrNull = (ms: Millis | null) => (ms === null ? null : new Date(ms).toISOString());

/**
 * The rate of the last finished run that handled any message (messages handled per second of its
 * run time), else this newsletter's own average since it began sending. Cron starts a run every
 * minute, so the estimated end assumes the sending goes on at that rate without gaps.
 */
export function rateOf(
  state: NewsletterState,
  runs: readonly RunInfo[],
  now: Millis,
): { perSecond: number; source: 'last-run' | 'average' } | null {
  const last = runs
    .filter((run) => run.endedAt !== null)
    .sort((a, b) => (b.endedAt as number) - (a.endedAt as number))
    .find((run) => run.counts.sent + run.counts.failed + run.counts.retry + run.counts.unknown > 0);
  if (last) {
    const handled = last.counts.sent + last.counts.failed + last.counts.retry + last.counts.unknown;
    const seconds = Math.max(((last.endedAt as number) - last.startedAt) / 1000, 0.001);
    return { perSecond: round(handled / seconds), source: 'last-run' };
  }
  const { startedAt } = state.newsletter;
  const done = state.counts.sent + state.counts.failed + state.counts.unknown;
  if (startedAt === null || done === 0 || now <= startedAt) return null;
  return { perSecond: round(done / ((now - startedAt) / 1000)), source: 'average' };
}

const round = (n: number) => Math.round(n * 10) / 10;

/** The hourly quota (NEWSLETTER_HOURLY_LIMIT) and what this clock hour has used of it. */
export interface QuotaUsage {
  account: string;
  hourlyLimit: number;
  used: number;
}

export function buildStatus(
  states: readonly NewsletterState[],
  runs: readonly RunInfo[],
  boundHostId: string | null,
  now: Millis,
  quotaUsage: QuotaUsage | null = null,
  isGone: ProcessGone = () => false,
) {
  const liveRuns = runs.filter((r) => r.endedAt === null);
  const hosts = [...new Set(runs.map((r) => r.hostId))];
  const of = (status: string) => states.filter((s) => s.newsletter.status === status);

  const scheduledItem = (s: NewsletterState) => ({
    id: s.newsletter.id,
    subject: s.newsletter.subject,
    lists: s.newsletter.lists,
    scheduledAt: isoOrNull(s.newsletter.scheduledAt),
    /** The zone the time was typed in; null: TZ (src/domain/zone.ts). */
    scheduledZone: s.newsletter.scheduledZone,
    audience: s.counts.audience,
  });
  const due = of('scheduled')
    .filter((s) => s.newsletter.scheduledAt !== null && s.newsletter.scheduledAt <= now)
    .map(scheduledItem);
  const upcoming = of('scheduled')
    .filter((s) => s.newsletter.scheduledAt !== null && s.newsletter.scheduledAt > now)
    .sort((a, b) => (a.newsletter.scheduledAt as number) - (b.newsletter.scheduledAt as number))
    .slice(0, UPCOMING)
    .map(scheduledItem);
  // A draft is never sent until scheduled: shown, so that one is not mistaken for "nothing to do".
  const drafts = of('draft').map((s) => ({
    id: s.newsletter.id,
    subject: s.newsletter.subject,
    lists: s.newsletter.lists,
    createdAt: new Date(s.newsletter.createdAt).toISOString(),
    audience: s.counts.audience,
  }));
  const sending = of('sending').map((s) => {
    const c = s.counts;
    const done = c.sent + c.failed + c.skipped + c.unknown;
    const remaining = c.pending + c.retry + c.claimed;
    const rate = rateOf(s, runs, now);
    return {
      id: s.newsletter.id,
      subject: s.newsletter.subject,
      startedAt: isoOrNull(s.newsletter.startedAt),
      counts: pickCounts(c),
      hardBounces: s.hardBounces ?? 0,
      bounced: s.reports?.bounced ?? 0,
      complained: s.reports?.complained ?? 0,
      progress: {
        done,
        total: c.audience,
        percent: c.audience === 0 ? 100 : Math.floor((done / c.audience) * 1000) / 10,
      },
      ratePerSecond: rate?.perSecond ?? null,
      rateSource: rate?.source ?? null,
      estimatedEnd:
        rate && rate.perSecond > 0
          ? new Date(now + Math.ceil((remaining / rate.perSecond) * 1000)).toISOString()
          : null,
    };
  });
  // Cancelled ones too: what went out before a cancel was sent, and must show.
  const recent = [...of('sent'), ...of('cancelled')]
    .filter((s) => s.newsletter.finishedAt !== null)
    .sort((a, b) => (b.newsletter.finishedAt as number) - (a.newsletter.finishedAt as number))
    .slice(0, RECENT)
    .map((s) => ({
      id: s.newsletter.id,
      subject: s.newsletter.subject,
      status: s.newsletter.status as 'sent' | 'cancelled',
      finishedAt: isoOrNull(s.newsletter.finishedAt),
      counts: pickCounts(s.counts),
      hardBounces: s.hardBounces ?? 0,
      bounced: s.reports?.bounced ?? 0,
      complained: s.reports?.complained ?? 0,
    }));

  // States no run will move on its own, each with the command that settles it (domain/unsettled.ts).
  const unsettled = findUnsettled(
    states.map((s) => ({ ...s, stranded: s.stranded ?? 0 })),
    liveRuns.length,
  );
  const idle = new Set(unsettled.filter((u) => u.kind === 'sending-idle').map((u) => u.newsletterId));
  const attention: string[] = [];
  for (const { newsletter: n, counts } of states) {
    if (counts.unknown > 0) {
      attention.push(
        `newsletter ${n.id}: ${counts.unknown} unknown deliveries; check the server logs, then \`newsletter reconcile ${n.id} --mark-sent|--resend\``,
      );
    }
    if (n.status === 'failed')
      attention.push(
        `newsletter ${n.id} failed to build: ${(n.failureReason ?? '').split('\n')[0]}; fix it (\`newsletter edit ${n.id} --template FILE\`), then \`newsletter schedule ${n.id} --at WHEN|--now\` (or \`newsletter delete ${n.id}\`)`,
      );
    if (n.status === 'sending' && liveRuns.length === 0 && !idle.has(n.id)) {
      attention.push(
        `newsletter ${n.id} is sending but no run is live: is the cron line for send-due in place?`,
      );
    }
  }
  attention.push(...unsettled.map(describeUnsettled));
  for (const run of liveRuns.filter(isGone)) {
    attention.push(
      `run ${run.id} (pid ${run.pid}) is open but its process is gone: it was killed or crashed; the next send-due ends it, and \`newsletter show ID\` then lists its unknown deliveries`,
    );
  }
  if (hosts.length > 1) {
    attention.push(
      `${hosts.length} different hosts have run send-due against this SQLite database (${hosts.join(', ')}): ` +
        'a cloned server? Only the bound host may send.',
    );
  }
  const window = quotaWindow(now);
  const quota =
    quotaUsage === null
      ? null
      : {
          account: quotaUsage.account,
          hourlyLimit: quotaUsage.hourlyLimit,
          usedThisHour: quotaUsage.used,
          hourStart: new Date(window.start).toISOString(),
          hourEnd: new Date(window.end).toISOString(),
        };
  const lastRun = runs[0] ?? null;
  return {
    due,
    sending,
    recent,
    upcoming,
    attention,
    newsletters: states.map((s) => ({ ...summarise(s.newsletter), counts: pickCounts(s.counts) })),
    liveRuns: liveRuns.map((r) => ({
      id: r.id,
      hostId: r.hostId,
      hostname: r.hostname,
      pid: r.pid,
      startedAt: new Date(r.startedAt).toISOString(),
      leaseUntil: new Date(r.leaseUntil).toISOString(),
      processGone: isGone(r),
    })),
    lastRun:
      lastRun === null
        ? null
        : {
            id: lastRun.id,
            hostId: lastRun.hostId,
            hostname: lastRun.hostname,
            startedAt: new Date(lastRun.startedAt).toISOString(),
            endedAt: isoOrNull(lastRun.endedAt),
            outcome: lastRun.outcome,
            processGone: lastRun.endedAt === null && isGone(lastRun),
            counts: lastRun.counts,
          },
    hosts,
    boundHostId,
    quota,
    unsettled,
    drafts,
  };
}

type StatusReport = ReturnType<typeof buildStatus>;

/**
 * A report's ISO time as people read it: in the zone it was typed in (a send time), else TZ, with
 * the offset (src/domain/zone.ts). The JSON report keeps UTC ISO 8601.
 */
function shown(iso: string | null, zone: string | null = null): string {
  return iso === null ? '-' : formatInZone(Date.parse(iso), zone);
}

function printScreen(report: StatusReport, now: Millis): void {
  const lines: string[] = [];
  const section = (title: string, items: string[]) => {
    if (items.length === 0) return;
    if (lines.length > 0) lines.push('');
    lines.push(chalk.bold(title), ...items.map((item) => `  ${item}`));
  };
  section(
    `Due now (${report.due.length})`,
    report.due.map(
      (n) =>
        `#${n.id} ${n.subject} · due ${shown(n.scheduledAt, n.scheduledZone)} · ${n.audience} recipients (${n.lists.join(', ')})`,
    ),
  );
  section(
    `Sending (${report.sending.length})`,
    report.sending.map((n) => {
      const rate =
        n.ratePerSecond === null
          ? 'rate not known yet'
          : `${n.ratePerSecond}/s (${n.rateSource === 'last-run' ? 'last run' : 'average'})`;
      const end =
        n.estimatedEnd === null
          ? ''
          : ` · ends about ${shown(n.estimatedEnd)} (${inWords(Date.parse(n.estimatedEnd) - now)})`;
      return `#${n.id} ${n.subject} · ${n.progress.done}/${n.progress.total} (${n.progress.percent}%) · ${rate}${end}`;
    }),
  );
  section(
    'Recently sent',
    report.recent.map((n) =>
      n.status === 'cancelled'
        ? `#${n.id} ${n.subject} · cancelled ${shown(n.finishedAt)} · ${n.counts.sent} sent before the cancel, ${n.counts.failed} failed${hardBouncesNote(n.hardBounces)}, ${n.counts.skipped} skipped, ${n.counts.unknown} unknown, ${n.counts.pending} never sent${reportsNote(n)}`
        : `#${n.id} ${n.subject} · finished ${shown(n.finishedAt)} · ${n.counts.sent} sent, ${n.counts.failed} failed${hardBouncesNote(n.hardBounces)}, ${n.counts.skipped} skipped, ${n.counts.unknown} unknown${reportsNote(n)}`,
    ),
  );
  section(
    'Scheduled',
    report.upcoming.map(
      (n) => `#${n.id} ${n.subject} · at ${shown(n.scheduledAt, n.scheduledZone)} · ${n.audience} recipients`,
    ),
  );
  section(
    `Drafts (${report.drafts.length}; not sent until \`newsletter schedule ID --at WHEN|--now\`)`,
    report.drafts.map((n) => `#${n.id} ${n.subject} · created ${shown(n.createdAt)} · ${n.lists.join(', ')}`),
  );
  if (lines.length === 0) lines.push('Nothing is due, sending or scheduled, and nothing was sent yet.');
  for (const line of lines) println(line);
  if (report.quota)
    println(
      `\nhourly quota of ${report.quota.account}: ${report.quota.usedThisHour} of ${report.quota.hourlyLimit} used this hour (until ${shown(report.quota.hourEnd)})`,
    );
  if (report.lastRun)
    println(
      `\nlast run: ${report.lastRun.id} on ${report.lastRun.hostname}, started ${shown(report.lastRun.startedAt)}, ${report.lastRun.outcome ?? (report.lastRun.processGone ? 'not running (its process is gone)' : 'running')}`,
    );
}

function printNewsletterTable(newsletters: StatusReport['newsletters']): void {
  println(
    table(
      [
        'id',
        'status',
        'scheduled',
        'subject',
        'audience',
        'sent',
        'failed',
        'skipped',
        'unknown',
        'retry',
        'pending',
      ],
      newsletters.map((n) => [
        n.id,
        n.status,
        shown(n.scheduledAt, n.scheduledZone),
        n.subject,
        n.counts.audience,
        n.counts.sent,
        n.counts.failed,
        n.counts.skipped,
        n.counts.unknown,
        n.counts.retry,
        n.counts.pending,
      ]),
    ),
  );
}

function inWords(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 90) return `in ${seconds}s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 90) return `in ${minutes}m`;
  return `in ${Math.round(minutes / 60)}h`;
}

export async function runsCommand(
  context: Context,
  options: { limit: string; json?: boolean },
): Promise<void> {
  const limit = Number(options.limit);
  // A bad option is a usage error (exit 2), as commander's own are.
  if (!Number.isInteger(limit) || limit <= 0)
    throw new UsageError(`--limit "${options.limit}" must be a whole number above 0.`);
  const runs = await withStore(context, { readonly: true }, (store) => store.listRuns(limit));
  const isGone = processGone(currentHost(context.config).hostId);
  const goneOpen = (r: RunInfo) => r.endedAt === null && isGone(r);
  if (options.json) {
    printJson(
      runs.map((r) => ({
        ...r,
        processGone: goneOpen(r),
        startedAt: new Date(r.startedAt).toISOString(),
        leaseUntil: new Date(r.leaseUntil).toISOString(),
        endedAt: r.endedAt === null ? null : new Date(r.endedAt).toISOString(),
      })),
    );
    return;
  }
  println(
    table(
      [
        'run',
        'host',
        'hostname',
        'pid',
        'started',
        'ended',
        'outcome',
        'sent',
        'failed',
        'retry',
        'unknown',
        'skipped',
      ],
      runs.map((r) => [
        r.id,
        r.hostId,
        r.hostname,
        r.pid,
        formatInZone(r.startedAt, null),
        r.endedAt === null ? '-' : formatInZone(r.endedAt, null),
        r.outcome ?? (goneOpen(r) ? 'gone' : 'running'),
        r.counts.sent,
        r.counts.failed,
        r.counts.retry,
        r.counts.unknown,
        r.counts.skipped,
      ]),
    ),
  );
}

/** `, 3 bounced, 1 complained` from authenticated reports (`bounces receive|import|fetch`); '' when none. */
function reportsNote(n: { bounced: number; complained: number }): string {
  const parts = [];
  if (n.bounced > 0) parts.push(`${n.bounced} bounced`);
  if (n.complained > 0) parts.push(`${n.complained} complained`);
  return parts.length === 0 ? '' : `, ${parts.join(', ')}`;
}
