import type { Context } from '../context.js';
import { withStore } from '../context.js';
import { printJson, println, table, time, warn } from '../output.js';
import { parseId, pickCounts, requireNewsletter, summarise } from './newsletters.js';

/** One screen: what is due, sending, recently finished, and what needs a person. */
export async function statusCommand(
  context: Context,
  id: string | undefined,
  options: { json?: boolean },
): Promise<void> {
  const report = await withStore(context, { readonly: true }, async (store) => {
    const all =
      id === undefined ? await store.listNewsletters() : [await requireNewsletter(store, parseId(id))];
    const newsletters = await Promise.all(
      all.map(async (n) => ({ ...summarise(n), counts: pickCounts(await store.counts(n.id)) })),
    );
    const runs = await store.listRuns(1000);
    const liveRuns = runs.filter((r) => r.endedAt === null);
    const hosts = [...new Set(runs.map((r) => r.hostId))];
    const boundHostId = store.kind === 'sqlite' ? await store.getMeta('host_id') : null;
    return { newsletters, liveRuns, hosts, boundHostId };
  });
  const attention: string[] = [];
  for (const n of report.newsletters) {
    if (n.counts.unknown > 0) {
      attention.push(
        `newsletter ${n.id}: ${n.counts.unknown} unknown deliveries; check the server logs, then \`newsletter reconcile ${n.id} --mark-sent|--resend\``,
      );
    }
    if (n.status === 'failed')
      attention.push(`newsletter ${n.id} failed to build: ${(n.failureReason ?? '').split('\n')[0]}`);
    if (n.status === 'sending' && report.liveRuns.length === 0) {
      attention.push(
        `newsletter ${n.id} is sending but no run is live: is the cron line for send-due in place?`,
      );
    }
  }
  if (report.hosts.length > 1) {
    attention.push(
      `${report.hosts.length} different hosts have run send-due against this SQLite database (${report.hosts.join(', ')}): ` +
        'a cloned server? Only the bound host may send.',
    );
  }
  if (options.json) {
    printJson({
      newsletters: report.newsletters,
      liveRuns: report.liveRuns.map((r) => ({
        id: r.id,
        hostId: r.hostId,
        hostname: r.hostname,
        pid: r.pid,
        startedAt: new Date(r.startedAt).toISOString(),
      })),
      hosts: report.hosts,
      boundHostId: report.boundHostId,
      attention,
    });
    return;
  }
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
      report.newsletters.map((n) => [
        n.id,
        n.status,
        n.scheduledAt ?? '-',
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
  for (const run of report.liveRuns)
    println(`running: run ${run.id} on ${run.hostname} (pid ${run.pid}) since ${time(run.startedAt)}`);
  for (const line of attention) warn(line);
}

export async function runsCommand(
  context: Context,
  options: { limit: string; json?: boolean },
): Promise<void> {
  const limit = Number(options.limit) || 50;
  const runs = await withStore(context, { readonly: true }, (store) => store.listRuns(limit));
  if (options.json) {
    printJson(
      runs.map((r) => ({
        ...r,
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
        time(r.startedAt),
        time(r.endedAt),
        r.outcome ?? 'running',
        r.counts.sent,
        r.counts.failed,
        r.counts.retry,
        r.counts.unknown,
        r.counts.skipped,
      ]),
    ),
  );
}
