/**
 * Several hosts on one PostgreSQL database, when one of them misbehaves (issue 16): a clock
 * minutes off (libfaketime), a host killed mid-send, a host cut off from the database for longer
 * than its lease (a TCP proxy the test freezes: test/support/tcp-proxy.js), and one host id used
 * in two places (two boots, two pid namespaces). Real processes of the built CLI, a real SMTP server, the
 * throwaway PostgreSQL server; the promise checked at the end of each is the same: nobody twice
 * (counted at the SMTP server), nobody stranded (no row left `claimed`), the newsletter `sent`.
 *
 * Hosts stop at exact points with failpoints (src/cli/failpoints.ts: `failpoint:NAME` on stderr,
 * then SIGSTOP); the only waits are for a process to stop or exit and for a lease to pass on the
 * database's clock (computed from the lease stored in the database).
 */
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import {
  expectExit,
  expectNoCrash,
  expectSettledOnce,
  ledger,
  newsletterStatus,
  runOf,
  skewedClock,
  until,
} from '../helpers/host-faults.js';
import {
  type CliResult,
  describePostgres,
  hostsWorkspace,
  killChildren,
  type PgCluster,
  REPO_ROOT,
  requireBuiltCli,
  runCli,
  sharedCluster,
  startCli,
  stopSharedCluster,
  waitUntilDatabaseTime,
} from '../helpers/postgres.js';
import { type SmtpSink, startSmtpSink } from '../helpers/smtp-sink.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

const BATCH = 20;
const BIN = join(REPO_ROOT, 'bin', 'newsletter.js');

/**
 * The CLI in a pid namespace of its own, as in a container that shares this machine's hostname:
 * `unshare` (util-linux; the tests run as root, as CI does), with the namespace's pid counter set
 * so that node gets pid 4000000 there, a pid that exists nowhere out here (pid_max is lower).
 * Started as a process group of its own, so that signals reach node through unshare and sh.
 */
function inPidNamespace(args: string[], env: Record<string, string>, cwd: string) {
  const probe = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'true'], { encoding: 'utf8' });
  if (probe.status !== 0)
    throw new Error(
      `This test runs a process in a pid namespace of its own, and \`unshare --pid\` failed here (${probe.error?.message ?? probe.stderr.trim()}): it needs util-linux's unshare, run as root (as .ci/run is).`,
    );
  const child = spawn(
    'unshare',
    [
      '--pid',
      '--fork',
      '--kill-child',
      '--mount-proc',
      'sh',
      '-c',
      'echo 3999999 > /proc/sys/kernel/ns_last_pid && "$0" "$@"',
      process.execPath,
      BIN,
      ...args,
    ],
    {
      cwd,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    },
  );
  let stderr = '';
  let stdout = '';
  const waiters: { text: string; resolve: () => void }[] = [];
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    for (const waiter of waiters.filter((w) => stderr.includes(w.text))) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve();
    }
  });
  const exited = new Promise<CliResult>((resolve) => {
    child.on('close', (code, signal) => {
      for (const waiter of waiters) waiter.resolve();
      resolve({ code, signal, stdout, stderr });
    });
  });
  return {
    exited,
    signal(name: NodeJS.Signals) {
      try {
        process.kill(-child.pid!, name);
      } catch {
        // Already gone.
      }
    },
    stderrIncludes(text: string): Promise<void> {
      if (stderr.includes(text)) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ text, resolve }));
    },
  };
}

describePostgres('several hosts under faults (PostgreSQL)', () => {
  let cluster: PgCluster;
  let sink: SmtpSink | null = null;
  let proxy: TcpProxy | null = null;

  beforeAll(async () => {
    requireBuiltCli();
    cluster = await sharedCluster();
  });

  afterEach(async () => {
    proxy?.thaw();
    await proxy?.close();
    proxy = null;
    await sink?.close();
    sink = null;
    expect(killChildren(), 'a CLI process outlived its test').toBe(0);
  });

  afterAll(stopSharedCluster);

  async function setUp(recipients: number, env: Record<string, string> = {}) {
    sink = await startSmtpSink();
    const workspace = await hostsWorkspace({
      cluster,
      recipients,
      transport: sink.url,
      env: { NEWSLETTER_BATCH: String(BATCH), ...env },
    });
    return { sink, workspace };
  }

  it('a host whose clock is ten minutes ahead warns, and does not take over the live claims of another', async () => {
    const { sink, workspace } = await setUp(200);
    try {
      // host-b (right clock, lease 60 s) holds a batch and is paused: alive, lease running.
      const holder = startCli(
        ['send-due'],
        workspace.env('host-b', { NEWSLETTER_LEASE: '60s', NEWSLETTER_FAILPOINTS: 'after-claim' }),
        { cwd: workspace.dir },
      );
      await holder.stderrIncludes('failpoint:after-claim');
      const held = await runOf(workspace, 'host-b');

      // host-a's clock is ten minutes ahead: on its own clock, host-b's lease passed long ago.
      const ahead = await runCli(
        ['send-due'],
        workspace.env('host-a', { NEWSLETTER_LEASE: '60s', ...skewedClock('+10m') }),
        { cwd: workspace.dir },
      );
      expectExit(ahead, [0]);
      expect(ahead.stderr).toMatch(/clock is 6\d\d\.\d s ahead of the database server's/);
      // It sent everyone else, and left host-b's run and claims alone.
      expect((await runOf(workspace, 'host-b')).ended_at).toBeNull();
      const rows = await ledger(workspace);
      expect(rows.filter((row) => row.run_id === held.id && row.state === 'claimed')).toHaveLength(BATCH);
      expect(sink.total).toBe(200 - BATCH);
      expect((await runOf(workspace, 'host-a')).outcome).toBe('ok');

      // host-b carries on, sends its batch and completes the newsletter.
      holder.child.kill('SIGCONT');
      expectExit(await holder.exited, [0]);
      expect(await newsletterStatus(workspace)).toBe('sent');
      const settled = await expectSettledOnce(workspace, sink, 200);
      expect(settled.every((row) => row.state === 'sent')).toBe(true);
      expect(sink.total).toBe(200);
    } finally {
      await workspace.close();
    }
  }, 60_000);

  it('a host whose clock is ten minutes behind neither keeps an expired lease nor loses its own early', async () => {
    const { sink, workspace } = await setUp(200);
    try {
      // host-d (right clock, lease 3 s) dies holding a batch.
      const dying = startCli(
        ['send-due'],
        workspace.env('host-d', { NEWSLETTER_LEASE: '3s', NEWSLETTER_FAILPOINTS: 'after-claim' }),
        { cwd: workspace.dir },
      );
      await dying.stderrIncludes('failpoint:after-claim');
      dying.child.kill('SIGKILL');
      await dying.exited;
      const dead = await runOf(workspace, 'host-d');

      // host-c (ten minutes behind, lease 60 s) holds a batch and is paused, alive. On its own
      // clock its lease would have ended nine minutes ago.
      const behind = startCli(
        ['send-due'],
        workspace.env('host-c', {
          NEWSLETTER_LEASE: '60s',
          NEWSLETTER_FAILPOINTS: 'after-claim',
          ...skewedClock('-10m'),
        }),
        { cwd: workspace.dir },
      );
      await behind.stderrIncludes('failpoint:after-claim');
      const live = await runOf(workspace, 'host-c');
      expect(live.lease_until).toBeGreaterThan(dead.lease_until);

      // Past host-d's lease on the database's clock, host-e (also ten minutes behind: on its own
      // clock host-d's lease has not even begun) ends host-d's run, and not host-c's.
      await waitUntilDatabaseTime(workspace, dead.lease_until + 1);
      const sweeper = await runCli(
        ['send-due'],
        workspace.env('host-e', { NEWSLETTER_LEASE: '60s', ...skewedClock('-10m') }),
        { cwd: workspace.dir },
      );
      expectExit(sweeper, [8]); // host-d's claims are unknown now: a person should look
      expect(sweeper.stderr).toMatch(/clock is 6\d\d\.\d s behind the database server's/);
      expect((await runOf(workspace, 'host-d')).outcome).toBe('lost');
      expect((await runOf(workspace, 'host-c')).ended_at).toBeNull();

      behind.child.kill('SIGCONT');
      expectExit(await behind.exited, [0]);
      expect(await newsletterStatus(workspace)).toBe('sent');
      const rows = await expectSettledOnce(workspace, sink, 200);
      const unknown = rows.filter((row) => row.state === 'unknown');
      expect(unknown).toHaveLength(BATCH);
      expect(unknown.every((row) => row.run_id === dead.id)).toBe(true);
      for (const row of unknown) expect(sink.received(row.address)).toBe(0);
      expect(sink.total).toBe(200 - BATCH);
    } finally {
      await workspace.close();
    }
  }, 60_000);

  it('one of three hosts killed mid-send: its claims become unknown after its lease, the others send everyone else once', async () => {
    const RECIPIENTS = 400;
    const { sink, workspace } = await setUp(RECIPIENTS, { NEWSLETTER_LEASE: '3s' });
    try {
      // host-a stops right before its fifth hand-over, mid-batch, holding its claims; the other two
      // start then, while it is stopped, and it is killed while they send. (Started all at once,
      // the other two could take every batch before host-a claimed one, and it would never stop.)
      const a = startCli(
        ['send-due'],
        workspace.env('host-a', { NEWSLETTER_FAILPOINTS: 'before-hand-over@5' }),
        { cwd: workspace.dir },
      );
      await a.stderrIncludes('failpoint:before-hand-over');
      expect(a.child.exitCode, 'host-a stopped at its failpoint, still alive').toBeNull();
      const others = ['host-b', 'host-c'].map((host) =>
        startCli(['send-due'], workspace.env(host), { cwd: workspace.dir }),
      );
      a.child.kill('SIGKILL');
      expect((await a.exited).signal).toBe('SIGKILL');
      const killed = await runOf(workspace, 'host-a');
      const heldAtDeath = (await ledger(workspace)).filter(
        (row) => row.run_id === killed.id && row.state === 'claimed',
      );
      expect(heldAtDeath.length).toBeGreaterThan(0);
      expect(heldAtDeath.length).toBeLessThanOrEqual(BATCH);
      for (const result of await Promise.all(others.map((o) => o.exited))) {
        expectNoCrash(result);
        expectExit(result, [0, 8]);
      }

      // Once host-a's lease has passed (the database's clock), the next run ends it.
      await waitUntilDatabaseTime(workspace, killed.lease_until + 1);
      expectExit(await runCli(['send-due'], workspace.env('host-b'), { cwd: workspace.dir }), [0, 8]);

      expect(await newsletterStatus(workspace)).toBe('sent');
      expect((await runOf(workspace, 'host-a')).outcome).toBe('lost');
      const rows = await expectSettledOnce(workspace, sink, RECIPIENTS);
      const unknown = rows.filter((row) => row.state === 'unknown');
      expect(unknown.map((row) => row.id).sort()).toEqual(heldAtDeath.map((row) => row.id).sort());
      expect(rows.filter((row) => row.state === 'sent')).toHaveLength(RECIPIENTS - unknown.length);
      // At most the four it handed over before it stopped reached the server; never twice.
      expect(unknown.filter((row) => sink.received(row.address) === 1).length).toBeLessThanOrEqual(4);
    } finally {
      await workspace.close();
    }
  }, 90_000);

  it('a host cut off from the database past its lease sends nothing after its margin; the others take over; its late writes are refused', async () => {
    const RECIPIENTS = 200;
    const LEASE_MS = 3000;
    const { sink, workspace } = await setUp(RECIPIENTS, { NEWSLETTER_LEASE: `${LEASE_MS}ms` });
    const database = new URL(workspace.database.url);
    proxy = await startTcpProxy({ targetPort: Number(database.port) });
    const throughProxy = new URL(workspace.database.url);
    throughProxy.port = String(proxy.port);
    try {
      // host-a reaches PostgreSQL only through the proxy, and sends slowly: 5 messages a second,
      // so that its batch of 20 (4 s) outlasts its lease (3 s): the partition finds it mid-batch,
      // and its lease runs out while it still has messages to hand over.
      const a = startCli(
        ['send-due'],
        workspace.env('host-a', { NEWSLETTER_DATABASE: throughProxy.href, NEWSLETTER_RATE: '5' }),
        { cwd: workspace.dir, timeoutMs: 90_000 },
      );
      let early: CliResult | null = null;
      void a.exited.then((result) => {
        early = result;
      });
      await until(() => sink.total >= 3 || early !== null);
      expect(early, 'host-a ended before the partition').toBeNull();
      proxy.freeze();
      const frozenAt = Date.now();
      const partitioned = await runOf(workspace, 'host-a');

      // Its last renewal reached the database before the freeze, so whatever it hands over after
      // one lease from now would be past its lease. Wait that long, then note what it sent.
      await new Promise((resolve) => setTimeout(resolve, frozenAt + LEASE_MS - Date.now()));
      const sentBefore = sink.messages.length;
      const [lease] = await workspace.query<{ lease_until: number }>(
        'SELECT lease_until FROM runs WHERE id = $1',
        [partitioned.id],
      );
      await waitUntilDatabaseTime(workspace, lease!.lease_until + 1);

      // The others end its run (its claims: unknown) and send everyone else.
      const others = await Promise.all(
        ['host-b', 'host-c'].map((host) => runCli(['send-due'], workspace.env(host), { cwd: workspace.dir })),
      );
      for (const result of others) expectExit(result, [0, 8]);
      expect((await runOf(workspace, 'host-a')).outcome).toBe('lost');
      expect(await newsletterStatus(workspace)).toBe('sent');

      // Thawed: its late writes meet the fence, and it says so with a non-zero exit.
      proxy.thaw();
      const late = await a.exited;
      expectNoCrash(late);
      expectExit(late, [9, 11]);

      const rows = await expectSettledOnce(workspace, sink, RECIPIENTS);
      const itsRows = new Set(rows.filter((row) => row.run_id === partitioned.id).map((row) => row.address));
      // Nothing of host-a's reached the server once its lease (less its margin) had passed.
      const afterLease = sink.messages.slice(sentBefore).flatMap((message) => message.to);
      expect(afterLease.filter((to) => itsRows.has(to))).toEqual([]);
      // And it did stop mid-batch: part of what it had claimed was never handed over by anyone.
      const neverSent = rows.filter(
        (row) => row.run_id === partitioned.id && sink.received(row.address) === 0,
      );
      expect(neverSent.length).toBeGreaterThan(0);
      expect(neverSent.every((row) => row.state === 'unknown')).toBe(true);
      // 11: its writes reached the database once thawed and were refused. 9: it gave up waiting
      // for the database first (its pool's connection timeout), having written nothing.
      expect(late.stderr).toMatch(late.code === 11 ? /lost its lease/ : /next run/);
      expect(
        rows.filter((row) => row.state === 'unknown').every((row) => row.run_id === partitioned.id),
      ).toBe(true);
    } finally {
      await workspace.close();
    }
  }, 120_000);

  it('one host id in two places (another boot): a run whose pid is gone here is left to its lease, not ended at once', async () => {
    const { sink, workspace } = await setUp(100, { NEWSLETTER_LEASE: '60s' });
    try {
      // "Machine X" and "machine Y" present the same host id and hostname; only the boot id differs.
      const x = startCli(
        ['send-due'],
        workspace.env('shared-id', {
          NEWSLETTER_TEST_BOOT_ID: 'boot-x',
          NEWSLETTER_FAILPOINTS: 'after-claim',
        }),
        { cwd: workspace.dir },
      );
      await x.stderrIncludes('failpoint:after-claim');
      // Its pid no longer exists here, which is all machine Y could see of a run on machine X.
      x.child.kill('SIGKILL');
      await x.exited;
      const other = await runOf(workspace, 'shared-id');

      const y = await runCli(
        ['send-due'],
        workspace.env('shared-id', { NEWSLETTER_TEST_BOOT_ID: 'boot-y' }),
        { cwd: workspace.dir },
      );
      expectExit(y, [0]);
      // Not ended through "process gone on this host": its claims are still its own.
      expect((await runOf(workspace, 'shared-id')).ended_at).toBeNull();
      expect(
        (await ledger(workspace)).filter((row) => row.run_id === other.id && row.state === 'claimed'),
      ).toHaveLength(BATCH);
      expect(sink.total).toBe(100 - BATCH);
      expect(await newsletterStatus(workspace)).toBe('sending');

      // The same boot as X (the same machine, after X crashed): the shortcut applies at once.
      const z = await runCli(
        ['send-due'],
        workspace.env('shared-id', { NEWSLETTER_TEST_BOOT_ID: 'boot-x' }),
        { cwd: workspace.dir },
      );
      expectExit(z, [8]);
      expect((await runOf(workspace, 'shared-id')).outcome).toBe('lost');
      expect(await newsletterStatus(workspace)).toBe('sent');
      const rows = await expectSettledOnce(workspace, sink, 100);
      expect(rows.filter((row) => row.state === 'unknown')).toHaveLength(BATCH);
    } finally {
      await workspace.close();
    }
  }, 60_000);
  it('one host id in two containers (one hostname, two pid namespaces): a live run in the other is never ended as "process gone"', async () => {
    const { sink, workspace } = await setUp(100, { NEWSLETTER_LEASE: '60s' });
    // Container X: its own pid namespace, where send-due gets pid 4000000, a pid that does not
    // exist out here; the same hostname and host id as this side.
    const x = inPidNamespace(
      ['send-due'],
      {
        HOME: workspace.dir,
        // A container has its own file system: its own run lock.
        ...workspace.env('shared-id', {
          NEWSLETTER_FAILPOINTS: 'after-claim',
          NEWSLETTER_LOCK_DIR: workspace.env('container-x').NEWSLETTER_LOCK_DIR!,
        }),
      },
      workspace.dir,
    );
    try {
      await x.stderrIncludes('failpoint:after-claim');
      const other = await runOf(workspace, 'shared-id');
      const [pidOfX] = await workspace.query<{ pid: number }>('SELECT pid FROM runs WHERE id = $1', [
        other.id,
      ]);
      expect(pidOfX!.pid).toBe(4_000_000);

      // Container Y, outside: pid 4000000 is gone from here, yet X's run is alive and left alone.
      const y = await runCli(['send-due'], workspace.env('shared-id'), { cwd: workspace.dir });
      expectExit(y, [0]);
      expect((await runOf(workspace, 'shared-id')).ended_at).toBeNull();
      expect(
        (await ledger(workspace)).filter((row) => row.run_id === other.id && row.state === 'claimed'),
      ).toHaveLength(BATCH);

      // X carries on: it sends its batch and completes the newsletter.
      x.signal('SIGCONT');
      const done = await x.exited;
      expectExit(done, [0]);
      expect(await newsletterStatus(workspace)).toBe('sent');
      const rows = await expectSettledOnce(workspace, sink, 100);
      expect(rows.every((row) => row.state === 'sent')).toBe(true);
    } finally {
      x.signal('SIGKILL');
      await x.exited;
      await workspace.close();
    }
  }, 60_000);
});
