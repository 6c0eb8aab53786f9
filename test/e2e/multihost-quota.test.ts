/**
 * The sending account's hourly quota, kept in the database and shared by every host: the built
 * CLI against a real SMTP server, NEWSLETTER_HOURLY_LIMIT=30.
 *
 * - PostgreSQL: two simulated hosts (each its own NEWSLETTER_HOST_ID and lock folder) × two
 *   `send-due` processes each, started together: exactly 30 messages reach the server between
 *   them, the rest stay pending, and the hour's row says 30.
 * - SQLite, one host, two processes started together: the same 30; a later run in the same hour
 *   sends nothing, exits 0, and says why with --verbose.
 *
 * The quota counts per clock hour; a run that straddled the turn of the hour would rightly get a
 * second quota, so each test starts well clear of it (a computed wait, at most a minute).
 */
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { quotaWindow } from '../../src/domain/quota.js';
import { reapChildren } from '../helpers/cli-process.js';
import {
  describePostgres,
  hostsWorkspace,
  killChildren,
  type PgCluster,
  requireBuiltCli,
  sharedCluster,
  startCli,
  stopSharedCluster,
} from '../helpers/postgres.js';
import { type SmtpSink, startSmtpSink } from '../helpers/smtp-sink.js';
import { createWorkspace } from '../helpers/workspace.js';

const LIMIT = 30;
const RECIPIENTS = 100;
const LOCK_HELD = 6;

/** Returns once the current clock hour has at least `marginMs` left. */
async function clearOfTheHourTurn(marginMs = 60_000): Promise<void> {
  const left = quotaWindow(Date.now()).end - Date.now();
  if (left < marginMs) await new Promise((resolve) => setTimeout(resolve, left + 100));
}

/**
 * Resolves once the process is stopped (state T): the failpoint prints its line before it stops
 * itself, and a SIGCONT sent in between would be lost.
 */
async function stoppedItself(pid: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('T')) return;
    if (Date.now() > deadline) throw new Error(`process ${pid} did not stop at its failpoint`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Every recipient the server accepted, with how many messages each got. */
function perRecipient(sink: SmtpSink): Map<string, number> {
  const counts = new Map<string, number>();
  for (const message of sink.messages.filter((m) => m.disposition === 'accepted')) {
    for (const to of message.to) counts.set(to, (counts.get(to) ?? 0) + 1);
  }
  return counts;
}

describePostgres('the hourly quota is shared by every host (PostgreSQL)', () => {
  const HOSTS = ['host-a', 'host-b'];
  const PROCESSES_PER_HOST = 2;
  let cluster: PgCluster;
  let sink: SmtpSink;

  beforeAll(async () => {
    requireBuiltCli();
    cluster = await sharedCluster();
    sink = await startSmtpSink();
  });

  afterEach(() => {
    expect(killChildren(), 'a CLI process outlived its test').toBe(0);
  });

  afterAll(async () => {
    await sink?.close();
    await stopSharedCluster();
  });

  it(`${HOSTS.length} hosts × ${PROCESSES_PER_HOST} processes, limit ${LIMIT}: exactly ${LIMIT} messages in all`, async () => {
    const workspace = await hostsWorkspace({
      cluster,
      recipients: RECIPIENTS,
      transport: sink.url,
      env: { NEWSLETTER_HOURLY_LIMIT: String(LIMIT), NEWSLETTER_BATCH: '8' },
    });
    try {
      await clearOfTheHourTurn();
      // Each run stops itself right after its first claim (its reservation held), until every
      // host's run is there: the hosts then provably hold parts of the quota at the same time,
      // and race for the rest once resumed.
      const started = HOSTS.flatMap((host) =>
        Array.from({ length: PROCESSES_PER_HOST }, () => ({
          host,
          cli: startCli(
            ['send-due', '--json'],
            workspace.env(host, { NEWSLETTER_FAILPOINTS: 'after-claim' }),
            { cwd: workspace.dir, timeoutMs: 60_000 },
          ),
        })),
      );
      // Resolves on the failpoint line, or when the process has left (lock held: exit 6).
      await Promise.all(started.map(({ cli }) => cli.stderrIncludes('failpoint:after-claim')));
      const paused = started.filter(
        ({ cli }) => cli.child.exitCode === null && cli.child.signalCode === null,
      );
      expect(new Set(paused.map(({ host }) => host))).toEqual(new Set(HOSTS));
      for (const { cli } of paused) await stoppedItself(cli.pid);
      for (const { cli } of paused) cli.child.kill('SIGCONT');
      const results = await Promise.all(
        started.map(async ({ host, cli }) => ({ host, ...(await cli.exited) })),
      );

      // Reaching the quota is not a failure: 0 (or 6 where the host's lock was held).
      for (const result of results) expect([0, LOCK_HELD], result.stderr).toContain(result.code);
      for (const host of HOSTS) {
        expect(results.filter((r) => r.host === host && r.code === 0).length).toBeGreaterThan(0);
      }
      const reports = results
        .filter((r) => r.code === 0)
        .map((r) => JSON.parse(r.stdout) as { stopReason: string | null; counts: { sent: number } });
      expect(reports.every((r) => r.stopReason === 'quota')).toBe(true);
      expect(reports.reduce((sum, r) => sum + r.counts.sent, 0)).toBe(LIMIT);

      // The SMTP server: exactly the limit, each to a different recipient.
      expect(sink.total).toBe(LIMIT);
      const counts = perRecipient(sink);
      expect(counts.size).toBe(LIMIT);
      expect([...counts.values()].every((n) => n === 1)).toBe(true);

      // The ledger: the limit sent, the rest pending (no row), the newsletter still sending.
      const states = await workspace.query<{ state: string; n: number }>(
        'SELECT state, count(*)::int AS n FROM deliveries WHERE newsletter_id = $1 GROUP BY state',
        [workspace.newsletterId],
      );
      expect(states).toEqual([{ state: 'sent', n: LIMIT }]);
      const [newsletter] = await workspace.query<{ status: string }>(
        'SELECT status FROM newsletters WHERE id = $1',
        [workspace.newsletterId],
      );
      expect(newsletter?.status).toBe('sending');

      // The hour's row, shared by both hosts: one account (the SMTP server, no login), 30 used.
      const usage = await workspace.query<{ account: string; window_start: number; used: number }>(
        'SELECT account, window_start, used FROM quota_usage',
      );
      expect(usage).toEqual([
        { account: sink.url, window_start: quotaWindow(Date.now()).start, used: LIMIT },
      ]);
      const runs = await workspace.query<{ host_id: string; outcome: string | null; sent: number }>(
        'SELECT host_id, outcome, sent FROM runs',
      );
      expect(runs.every((run) => run.outcome === 'quota')).toBe(true);
      for (const host of HOSTS) {
        expect(
          runs.filter((run) => run.host_id === host).reduce((sum, run) => sum + run.sent, 0),
        ).toBeGreaterThan(0);
      }
    } finally {
      await workspace.close();
    }
  }, 180_000);
});

describe('the hourly quota on SQLite (one host)', () => {
  let sink: SmtpSink | null = null;

  afterEach(async () => {
    const left = await reapChildren();
    await sink?.close();
    sink = null;
    if (left.length > 0) throw new Error(`children left running: ${left.join(', ')}`);
  });

  it(`two processes started together, limit ${LIMIT}: exactly ${LIMIT}; later runs this hour send nothing and exit 0`, async () => {
    sink = await startSmtpSink();
    const workspace = await createWorkspace({
      recipients: RECIPIENTS,
      transport: sink.url,
      env: {
        NEWSLETTER_HOURLY_LIMIT: String(LIMIT),
        NEWSLETTER_QUOTA_ACCOUNT: 'news@smtp.example.org',
        NEWSLETTER_BATCH: '8',
      },
    });
    try {
      await clearOfTheHourTurn();
      const runs = [workspace.start(['send-due'], {}, 60_000), workspace.start(['send-due'], {}, 60_000)];
      const results = await Promise.all(runs.map((run) => run.exited));
      for (const result of results) expect([0, LOCK_HELD], result.stderr).toContain(result.code);
      expect(results.some((result) => result.code === 0)).toBe(true);
      // Cron's view: quiet. Reaching the quota is not news for the operator's mailbox.
      for (const result of results) expect(result.stdout + result.stderr).toBe('');

      expect(sink.total).toBe(LIMIT);
      expect(perRecipient(sink).size).toBe(LIMIT);
      const shown = await workspace.show();
      expect(shown.status).toBe('sending');
      expect(shown.counts).toMatchObject({ sent: LIMIT, pending: RECIPIENTS - LIMIT, claimed: 0 });
      expect(
        workspace.query<{ account: string; used: number }>('SELECT account, used FROM quota_usage'),
      ).toEqual([{ account: 'news@smtp.example.org', used: LIMIT }]);

      // Later in the same hour: nothing goes out; exit 0, and --verbose says why.
      const later = await workspace.run(['send-due', '--verbose']);
      expect(later.code, later.stderr).toBe(0);
      expect(later.stdout).toContain(
        'stopped claiming: the hourly quota of news@smtp.example.org (30 messages)',
      );
      expect(sink.total).toBe(LIMIT);
      const runsShown = await workspace.runs();
      expect(runsShown[0]).toMatchObject({ outcome: 'quota', counts: { sent: 0 } });
    } finally {
      await workspace.remove();
    }
  }, 180_000);
});
