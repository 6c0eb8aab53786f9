/**
 * PostgreSQL restarted (`pg_ctl restart -m fast`) or down for longer than a lease while three
 * hosts send one newsletter (issue 16). Every run stops cleanly or carries on: no stack trace, a
 * clear message and the transient exit code (9) when it gives up; the rows settle as "Nobody
 * stranded" requires (nothing `claimed` once the runs are over and their leases have passed);
 * the next runs complete the newsletter; the SMTP server saw nobody twice.
 *
 * This file owns its PostgreSQL server (it restarts and stops it), so no other test shares it.
 * The hosts send at a set rate so that the restart finds them mid-send; the fault is injected once
 * the SMTP server has seen a given number of messages, not after a sleep.
 */
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import {
  expectExit,
  expectNoCrash,
  expectSettledOnce,
  newsletterStatus,
  until,
} from '../helpers/host-faults.js';
import {
  type CliResult,
  describePostgres,
  type HostsWorkspace,
  hostsWorkspace,
  killChildren,
  type PgCluster,
  requireBuiltCli,
  runCli,
  startCli,
  startCluster,
  waitUntilDatabaseTime,
} from '../helpers/postgres.js';
import { type SmtpSink, startSmtpSink } from '../helpers/smtp-sink.js';

const RECIPIENTS = 600;
const HOSTS = ['host-a', 'host-b', 'host-c'];
const LEASE_MS = 3000;

/** Exit 9 says, in one short paragraph, that PostgreSQL was lost and that the next run goes on. */
function expectTransientMessage(result: CliResult): void {
  const errors = result.stderr.split('\n').filter((line) => line.startsWith('error: '));
  expect(errors, result.stderr).toHaveLength(1);
  expect(errors[0], result.stderr).toMatch(/PostgreSQL|database/);
  expect(result.stderr, result.stderr).toMatch(/next run/);
}

/** After the runs: wait out every lease still open, then run until the newsletter is sent. */
async function completeAfterwards(workspace: HostsWorkspace): Promise<void> {
  const [open] = await workspace.query<{ until: number | null }>(
    'SELECT max(lease_until) AS until FROM runs WHERE ended_at IS NULL',
  );
  if (open?.until) await waitUntilDatabaseTime(workspace, open.until + 1);
  for (let attempt = 0; attempt < 3 && (await newsletterStatus(workspace)) !== 'sent'; attempt++)
    expectExit(await runCli(['send-due'], workspace.env('host-b'), { cwd: workspace.dir }), [0, 8]);
  expect(await newsletterStatus(workspace)).toBe('sent');
}

describePostgres('three hosts while PostgreSQL restarts', () => {
  let cluster: PgCluster;
  let sink: SmtpSink | null = null;
  let workspace: HostsWorkspace | null = null;

  beforeAll(async () => {
    requireBuiltCli();
    cluster = await startCluster();
  });

  afterEach(async () => {
    await sink?.close();
    sink = null;
    await workspace?.close();
    workspace = null;
    expect(killChildren(), 'a CLI process outlived its test').toBe(0);
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  async function threeHostsMidSend() {
    sink = await startSmtpSink();
    workspace = await hostsWorkspace({
      cluster,
      recipients: RECIPIENTS,
      transport: sink.url,
      // 100 messages a second per host: the send takes a few seconds, the restart finds it busy.
      env: { NEWSLETTER_BATCH: '20', NEWSLETTER_LEASE: `${LEASE_MS}ms`, NEWSLETTER_RATE: '100' },
    });
    const ws = workspace;
    const runs = HOSTS.map((host) =>
      startCli(['send-due'], ws.env(host), { cwd: ws.dir, timeoutMs: 60_000 }),
    );
    const s = sink;
    await until(() => s.total >= 100);
    return { sink: s, workspace: ws, runs };
  }

  it('pg_ctl restart -m fast mid-send: every run carries on or stops with exit 9; nobody twice; the next runs complete', async () => {
    const { sink, workspace: ws, runs } = await threeHostsMidSend();
    const before = sink.total;
    await cluster.restart();

    const results = await Promise.all(runs.map((run) => run.exited));
    for (const result of results) {
      expectNoCrash(result);
      expectExit(result, [0, 8, 9]);
      if (result.code === 9) expectTransientMessage(result);
    }
    // The restart hit them mid-send: they had not finished before it.
    expect(before).toBeLessThan(RECIPIENTS);
    await completeAfterwards(ws);
    const rows = await expectSettledOnce(ws, sink, RECIPIENTS);
    expect(rows.filter((row) => !['sent', 'unknown'].includes(row.state))).toEqual([]);
  }, 90_000);

  it('PostgreSQL down for longer than the lease mid-send: all three stop with exit 9 and one clear paragraph; the next runs complete', async () => {
    const { sink, workspace: ws, runs } = await threeHostsMidSend();
    await cluster.stopFast();
    let results: CliResult[];
    try {
      results = await Promise.all(runs.map((run) => run.exited));
    } finally {
      await cluster.startAgain();
    }
    for (const result of results) {
      expectNoCrash(result);
      expectExit(result, [9]);
      expectTransientMessage(result);
    }
    await completeAfterwards(ws);
    const rows = await expectSettledOnce(ws, sink, RECIPIENTS);
    // What may have been handed over when the database went away is unknown: at most the two
    // batches a host holds at once (src/engine/send-newsletter.ts) per host; everyone else was
    // sent once.
    const unknown = rows.filter((row) => row.state === 'unknown');
    expect(unknown.length).toBeLessThanOrEqual(HOSTS.length * 2 * 20);
    expect(rows.filter((row) => !['sent', 'unknown'].includes(row.state))).toEqual([]);
  }, 120_000);
});
