/**
 * A host that dies or freezes while the others carry on, on one PostgreSQL database.
 *
 * The failing host stops itself at a failpoint (src/cli/failpoints.ts: it prints
 * `failpoint:NAME` and sends itself SIGSTOP), so the crash happens exactly there, not after a
 * sleep. Leases are short (NEWSLETTER_LEASE=3s); waits for a lease to pass are computed from the
 * lease stored in the database and the database's clock.
 */
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import {
  type CliResult,
  describePostgres,
  type HostsWorkspace,
  hostsWorkspace,
  killChildren,
  type PgCluster,
  requireBuiltCli,
  runCli,
  sharedCluster,
  startCli,
  stopSharedCluster,
  waitUntilDatabaseTime,
} from '../helpers/postgres.js';
import { type SmtpSink, startSmtpSink } from '../helpers/smtp-sink.js';

const RECIPIENTS = 300;
const BATCH = 20;
const LEASE = { NEWSLETTER_LEASE: '3s', NEWSLETTER_BATCH: String(BATCH) };

interface Row {
  id: number;
  address: string;
  state: string;
  run_id: number;
  updated_at: number;
  reason: string | null;
}

async function ledger(workspace: HostsWorkspace): Promise<Row[]> {
  return workspace.query<Row>(
    'SELECT id, address, state, run_id, updated_at, reason FROM deliveries WHERE newsletter_id = $1 ORDER BY id',
    [workspace.newsletterId],
  );
}

async function runOf(workspace: HostsWorkspace, host: string) {
  const [run] = await workspace.query<{
    id: number;
    lease_until: number;
    ended_at: number | null;
    outcome: string;
  }>('SELECT id, lease_until, ended_at, outcome FROM runs WHERE host_id = $1 ORDER BY id LIMIT 1', [host]);
  if (!run) throw new Error(`no run of ${host}`);
  return run;
}

async function newsletterStatus(workspace: HostsWorkspace): Promise<string | undefined> {
  const [row] = await workspace.query<{ status: string }>('SELECT status FROM newsletters WHERE id = $1', [
    workspace.newsletterId,
  ]);
  return row?.status;
}

function expectOk(result: CliResult, allowed: number[] = [0]) {
  expect(allowed, `exit ${result.code}\n${result.stderr}`).toContain(result.code);
}

describePostgres('a host that dies or freezes mid-send (PostgreSQL)', () => {
  let cluster: PgCluster;
  let sink: SmtpSink;

  beforeAll(async () => {
    requireBuiltCli();
    cluster = await sharedCluster();
  });

  afterEach(async () => {
    await sink?.close();
    expect(killChildren(), 'a CLI process outlived its test').toBe(0);
  });

  afterAll(stopSharedCluster);

  it('SIGKILL after its claim: its rows become unknown after its lease, the others finish', async () => {
    sink = await startSmtpSink();
    const workspace = await hostsWorkspace({
      cluster,
      recipients: RECIPIENTS,
      transport: sink.url,
      env: LEASE,
    });
    try {
      const dying = startCli(
        ['send-due'],
        workspace.env('host-a', { NEWSLETTER_FAILPOINTS: 'after-claim' }),
        {
          cwd: workspace.dir,
        },
      );
      await dying.stderrIncludes('failpoint:after-claim');
      dying.child.kill('SIGKILL');
      expect((await dying.exited).signal).toBe('SIGKILL');
      const dead = await runOf(workspace, 'host-a');
      const held = (await ledger(workspace)).filter((row) => row.run_id === dead.id);
      expect(held).toHaveLength(BATCH);
      expect(held.every((row) => row.state === 'claimed')).toBe(true);

      // The other hosts finish everything else, whether or not host-a's lease has passed yet.
      const others = await Promise.all(
        ['host-b', 'host-c'].map((host) => runCli(['send-due'], workspace.env(host), { cwd: workspace.dir })),
      );
      for (const result of others) expectOk(result, [0, 8]);

      // Once its lease has passed, the next run on any host ends it: its claims become unknown,
      // never resent, and the newsletter completes from the ledger.
      await waitUntilDatabaseTime(workspace, dead.lease_until + 1);
      expectOk(await runCli(['send-due'], workspace.env('host-b'), { cwd: workspace.dir }), [0, 8]);

      const rows = await ledger(workspace);
      expect(rows).toHaveLength(RECIPIENTS);
      const unknown = rows.filter((row) => row.state === 'unknown');
      expect(unknown.map((row) => row.address).sort()).toEqual(held.map((row) => row.address).sort());
      expect(rows.filter((row) => row.state === 'sent')).toHaveLength(RECIPIENTS - BATCH);
      expect(await newsletterStatus(workspace)).toBe('sent');
      expect((await runOf(workspace, 'host-a')).outcome).toBe('lost');

      // The SMTP server: host-a sent nothing; everyone else exactly once.
      expect(sink.total).toBe(RECIPIENTS - BATCH);
      for (const row of unknown) expect(sink.received(row.address)).toBe(0);
      for (const row of rows.filter((r) => r.state === 'sent')) expect(sink.count(row.address)).toBe(1);
    } finally {
      await workspace.close();
    }
  }, 60_000);

  it('SIGSTOP past its lease, then SIGCONT: its late writes change nothing', async () => {
    sink = await startSmtpSink();
    const workspace = await hostsWorkspace({
      cluster,
      recipients: RECIPIENTS,
      transport: sink.url,
      env: LEASE,
    });
    try {
      // host-a sends its first batch, then freezes before recording the outcomes.
      const frozen = startCli(
        ['send-due'],
        workspace.env('host-a', { NEWSLETTER_FAILPOINTS: 'after-send-before-record' }),
        { cwd: workspace.dir },
      );
      await frozen.stderrIncludes('failpoint:after-send-before-record');
      const run = await runOf(workspace, 'host-a');
      const inFlight = (await ledger(workspace)).filter((row) => row.run_id === run.id);
      expect(inFlight).toHaveLength(BATCH);
      expect(sink.total).toBe(BATCH);

      // Past its lease, host-b ends host-a's run (its rows: unknown) and sends everyone else.
      await waitUntilDatabaseTime(workspace, run.lease_until + 1);
      expectOk(await runCli(['send-due'], workspace.env('host-b'), { cwd: workspace.dir }), [8]);
      const before = await ledger(workspace);
      expect(before.filter((row) => row.state === 'unknown').map((row) => row.id)).toEqual(
        inFlight.map((row) => row.id),
      );
      expect(await newsletterStatus(workspace)).toBe('sent');

      // host-a wakes up and tries to record what it sent: the fence refuses every write.
      frozen.child.kill('SIGCONT');
      const late = await frozen.exited;
      expect(late.code, late.stderr).toBe(11); // lost its lease: its late writes were refused
      expect(await ledger(workspace)).toEqual(before);
      expect(await newsletterStatus(workspace)).toBe('sent');
      expect((await runOf(workspace, 'host-a')).outcome).toBe('lost');

      // Each recipient reached the server exactly once: host-a's batch by host-a (recorded as
      // unknown, for an operator), everyone else by host-b.
      expect(sink.total).toBe(RECIPIENTS);
      for (const row of before) expect(sink.received(row.address)).toBe(1);
    } finally {
      await workspace.close();
    }
  }, 60_000);
});
