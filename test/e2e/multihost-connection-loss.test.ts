/**
 * Promise: losing the PostgreSQL connection (a terminated backend, a server restart, a server
 * that stays down) never crashes a run and never costs a recipient a copy or an outcome. The run
 * reconnects and finishes, or stops with exit 9 and one clear paragraph; no row stays `claimed`;
 * the next run completes; the SMTP server saw every address at most once.
 *
 * The run is paused exactly where the connection loss should hit it, with a failpoint
 * (src/cli/failpoints.ts: it prints `failpoint:NAME` and stops itself with SIGSTOP); the test
 * breaks the connections while it is stopped, then resumes it with SIGCONT. No sleeps: the only
 * waits are for the process to stop or exit, and one computed from the lease.
 *
 * This file owns its PostgreSQL server (it restarts and stops it), so no other test shares it.
 */
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { type CliProcess, type CliResult, reapChildren, startCli } from '../helpers/cli-process.js';
import {
  describePostgres,
  type HostsWorkspace,
  hostsWorkspace,
  type PgCluster,
  requireBuiltCli,
  runCli,
  startCluster,
} from '../helpers/postgres.js';
import { type SmtpSink, startSmtpSink } from '../helpers/smtp-sink.js';

const RECIPIENTS = 60;
const BATCH = '20';
const SHORT_LEASE_MS = 3000;

function addressOf(index: number): string {
  return `reader-${String(index + 1).padStart(5, '0')}@example.org`;
}

/** The whole environment of a paused run: nothing is inherited (cli-process.ts). */
function envOf(workspace: HostsWorkspace, host: string, extra: Record<string, string>) {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: workspace.dir, ...workspace.env(host, extra) };
}

/** Starts host-a's run and waits until it has stopped itself at `failpoint`. */
async function pausedRun(
  workspace: HostsWorkspace,
  failpoint: string,
  extra: Record<string, string> = {},
): Promise<CliProcess> {
  const run = startCli(['send-due'], {
    cwd: workspace.dir,
    env: envOf(workspace, 'host-a', { NEWSLETTER_FAILPOINTS: failpoint, ...extra }),
    timeoutMs: 60_000,
  });
  await run.waitForFailpoint(failpoint);
  return run;
}

/** No crash: no unhandled 'error' event, no stack trace, no "unexpected failure" (exit 1). */
function expectNoCrash(result: CliResult): void {
  const report = `exit ${result.code}, signal ${result.signal}\n${result.stderr}`;
  expect(result.timedOut, report).toBe(false);
  expect(result.signal, report).toBeNull();
  expect(result.stderr, report).not.toMatch(/Unhandled 'error' event/);
  // A stack frame: a new line (real, or escaped inside a JSON log record) that starts with "at ".
  expect(result.stderr, report).not.toMatch(/(\n|\\n)\s+at /);
  expect(result.stderr, report).not.toMatch(/Unexpected failure/);
  expect(result.code, report).not.toBe(1);
}

/**
 * The operator's report of a failed run: the `error:` line and its indented details (text, under
 * cron and at a terminal), or the `error` record of JSON log lines (under systemd, or with
 * `--log-format json`: src/cli/log.ts).
 */
function errorReports(stderr: string): string[][] {
  const reports: string[][] = [];
  for (const line of stderr.split('\n')) {
    if (line.startsWith('{')) {
      const record = JSON.parse(line) as { event?: string; message?: string; details?: string[] };
      if (record.event === 'error') reports.push([record.message ?? '', ...(record.details ?? [])]);
    } else if (line.startsWith('error: ')) reports.push([line.slice('error: '.length)]);
    else if (line.startsWith('  ') && reports.length > 0) reports.at(-1)!.push(line.trim());
  }
  return reports;
}

/** Exit 9 says, in one short paragraph, that PostgreSQL was lost and that the next run goes on. */
function expectTransientMessage(result: CliResult): void {
  const reports = errorReports(result.stderr);
  expect(reports, result.stderr).toHaveLength(1);
  const [message, ...details] = reports[0]!;
  expect(message, result.stderr).toMatch(/PostgreSQL/);
  expect(details.length, result.stderr).toBeLessThanOrEqual(4);
  expect([message, ...details].join(' '), result.stderr).toMatch(/next run/);
}

async function statesOf(workspace: HostsWorkspace): Promise<Record<string, number>> {
  const rows = await workspace.query<{ state: string; n: number }>(
    'SELECT state, count(*)::int AS n FROM deliveries WHERE newsletter_id = $1 GROUP BY state',
    [workspace.newsletterId],
  );
  return Object.fromEntries(rows.map((row) => [row.state, row.n]));
}

async function statusOf(workspace: HostsWorkspace): Promise<string | undefined> {
  const [row] = await workspace.query<{ status: string }>('SELECT status FROM newsletters WHERE id = $1', [
    workspace.newsletterId,
  ]);
  return row?.status;
}

async function addressesIn(workspace: HostsWorkspace, state: string): Promise<string[]> {
  const rows = await workspace.query<{ address: string }>(
    'SELECT address FROM deliveries WHERE newsletter_id = $1 AND state = $2',
    [workspace.newsletterId, state],
  );
  return rows.map((row) => row.address);
}

/** The next run, as cron would start it on host-b. */
function nextRun(
  workspace: HostsWorkspace,
  host = 'host-b',
): Promise<{ code: number | null; stderr: string }> {
  return runCli(['send-due'], workspace.env(host), { cwd: workspace.dir });
}

/**
 * After the interrupted run (exit 0, or 9 with its message) and at most one more: nothing
 * `claimed`, the newsletter `sent`, and the SMTP server got every address exactly once.
 */
async function expectCompleted(workspace: HostsWorkspace, sink: SmtpSink, first: CliResult): Promise<void> {
  expectNoCrash(first);
  expect([0, 9], first.stderr).toContain(first.code);
  if (first.code === 9) expectTransientMessage(first);
  expect((await statesOf(workspace)).claimed ?? 0).toBe(0);
  if ((await statusOf(workspace)) !== 'sent') {
    const second = await nextRun(workspace);
    expect([0, 8], second.stderr).toContain(second.code);
  }
  expect(await statusOf(workspace)).toBe('sent');
  const states = await statesOf(workspace);
  expect(Object.values(states).reduce((sum, n) => sum + n, 0)).toBe(RECIPIENTS);
  expect(Object.keys(states).filter((state) => state !== 'sent' && state !== 'unknown')).toEqual([]);
  for (let i = 0; i < RECIPIENTS; i++) expect(sink.received(addressOf(i)), addressOf(i)).toBe(1);
  expect(sink.messages).toHaveLength(RECIPIENTS);
}

describePostgres('a run that loses its PostgreSQL connection', () => {
  let cluster: PgCluster;
  let sink: SmtpSink | null = null;
  let workspace: HostsWorkspace | null = null;

  beforeAll(async () => {
    requireBuiltCli();
    cluster = await startCluster();
  });

  afterEach(async () => {
    const left = await reapChildren();
    await sink?.close();
    sink = null;
    await workspace?.close();
    workspace = null;
    expect(left, 'a CLI process outlived its test').toEqual([]);
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  async function setUp(env: Record<string, string> = {}): Promise<{ sink: SmtpSink; ws: HostsWorkspace }> {
    sink = await startSmtpSink();
    workspace = await hostsWorkspace({
      cluster,
      recipients: RECIPIENTS,
      transport: sink.url,
      env: { NEWSLETTER_BATCH: BATCH, ...env },
    });
    return { sink, ws: workspace };
  }

  it.each(['after-claim', 'after-send-before-record'])(
    'its backends terminated while it is paused %s: it finishes, or exits 9, and nobody is lost or sent twice',
    async (failpoint) => {
      const { sink, ws } = await setUp();
      const run = await pausedRun(ws, failpoint);

      const [terminated] = await ws.query<{ n: number }>(
        `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
          WHERE application_name = 'newsletter' AND datname = $1 AND pid <> pg_backend_pid()`,
        [ws.database.name],
      );
      expect(terminated?.n, 'the paused run held no connection to terminate').toBeGreaterThan(0);

      run.signal('SIGCONT');
      await expectCompleted(ws, sink, await run.exited);
    },
  );

  it.each(['after-claim', 'after-send-before-record'])(
    'the server restarted (pg_ctl restart -m fast) while it is paused %s: the same',
    async (failpoint) => {
      const { sink, ws } = await setUp();
      const run = await pausedRun(ws, failpoint);

      await cluster.restart();

      run.signal('SIGCONT');
      await expectCompleted(ws, sink, await run.exited);
    },
  );

  it('the server down for longer than its lease: exit 9 in one paragraph; the next run settles its rows and finishes', async () => {
    const { sink, ws } = await setUp({ NEWSLETTER_LEASE: `${SHORT_LEASE_MS}ms` });
    const run = await pausedRun(ws, 'after-claim');
    const [first] = await ws.query<{ id: number }>("SELECT id FROM runs WHERE host_id = 'host-a'");
    const claimed = await addressesIn(ws, 'claimed');
    expect(claimed).toHaveLength(Number(BATCH));

    await cluster.stopFast();
    let restarted = false;
    try {
      const resumedAt = Date.now();
      run.signal('SIGCONT');
      const result = await run.exited;
      expectNoCrash(result);
      expect(result.code, result.stderr).toBe(9);
      expectTransientMessage(result);
      // Down for longer than the lease: no renewal reached the database after the pause, so the
      // lease ends at most one lease after the resume (same host, same clock). A computed wait.
      const leftOfLease = resumedAt + SHORT_LEASE_MS + 1 - Date.now();
      if (leftOfLease > 0) await new Promise((resolve) => setTimeout(resolve, leftOfLease));
      await cluster.startAgain();
      restarted = true;
    } finally {
      if (!restarted) await cluster.startAgain();
    }

    // The next run, on the same host: the first run's claims that may have been handed over
    // become `unknown` (never resent), everyone else is sent.
    const next = await nextRun(ws, 'host-a');
    expect([0, 8], next.stderr).toContain(next.code);
    const states = await statesOf(ws);
    expect(states.claimed ?? 0).toBe(0);
    expect(Object.values(states).reduce((sum, n) => sum + n, 0)).toBe(RECIPIENTS);
    expect(Object.keys(states).filter((state) => state !== 'sent' && state !== 'unknown')).toEqual([]);
    expect(await statusOf(ws)).toBe('sent');
    const [closed] = await ws.query<{ ended_at: number | null }>('SELECT ended_at FROM runs WHERE id = $1', [
      first!.id,
    ]);
    expect(closed?.ended_at).not.toBeNull();

    const unknown = await addressesIn(ws, 'unknown');
    for (const address of unknown) expect(claimed).toContain(address);
    for (const address of await addressesIn(ws, 'sent')) expect(sink.received(address), address).toBe(1);
    for (let i = 0; i < RECIPIENTS; i++)
      expect(sink.received(addressOf(i)), addressOf(i)).toBeLessThanOrEqual(1);
  });
});
