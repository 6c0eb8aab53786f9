/**
 * Leases and fencing (issue 3, test 5): a run stopped with SIGSTOP (a frozen VM, a paused
 * container, a stalled disk) past its lease is taken over by the next run; when it wakes up, it
 * must not change a thing, and it must say so with a non-zero exit code.
 *
 * The stopped run holds the shared run lock; NEWSLETTER_LOCK_STALE=2s lets the next run take it
 * once it is stale, as it would after a long pause. The test waits for the lease and the lock to
 * run out by watching them (the run's lease_until, the lock's mtime), not with a fixed sleep.
 */
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { type Workspace, waitUntil, perTest } from '../helpers/workspace.js';

const BATCH = 5;
const LOCK_STALE_MS = 2000;
const LOST_LEASE = 11;
const PARTLY_FAILED = 8;

const resources = perTest();

/** Waits until a run started now may take over the run lock and the lease of `runId`. */
async function waitForStaleLeaseAndLock(ws: Workspace, runId: number): Promise<void> {
  const run = (await ws.runs()).find((r) => r.id === runId);
  const leaseUntil = Date.parse(run!.leaseUntil);
  const lockPath = `${ws.dbPath}.lock`;
  await waitUntil(
    `run ${runId} has lost its lease and its lock is stale`,
    async () => Date.now() > leaseUntil && Date.now() - (await stat(lockPath)).mtimeMs > LOCK_STALE_MS + 100,
    10_000,
  );
}

/** Everything in the database but the given run's own row. */
function snapshot(ws: Workspace, exceptRunId: number) {
  return {
    deliveries: ws.query('SELECT * FROM deliveries ORDER BY id'),
    newsletters: ws.query('SELECT * FROM newsletters ORDER BY id'),
    suppressions: ws.query('SELECT * FROM suppressions ORDER BY address'),
    runs: ws.query('SELECT * FROM runs WHERE id <> ? ORDER BY id', exceptRunId),
  };
}

describe('a run stopped past its lease is taken over, and its late writes change nothing', () => {
  it.each([
    {
      point: 'after-claim',
      meaning: 'stopped holding a claimed batch it has not sent',
      sentBeforeStop: 0,
    },
    {
      // After the wait for its rate slot, before the hand-over: the lease must be checked here,
      // not before the wait (a run paused while waiting once sent two messages on waking).
      point: 'before-hand-over',
      meaning: 'stopped right before handing its first message over',
      sentBeforeStop: 0,
    },
    {
      point: 'after-send-before-record',
      meaning: 'stopped after the server accepted its batch, before recording it',
      sentBeforeStop: BATCH,
    },
  ])('SIGSTOP at $point ($meaning)', async ({ point, sentBeforeStop }) => {
    const audience = 30;
    const sink = await resources.sink();
    const workspace = await resources.workspace({
      recipients: audience,
      transport: sink.url,
      env: {
        NEWSLETTER_BATCH: String(BATCH),
        NEWSLETTER_LEASE: '2s',
        NEWSLETTER_LOCK_STALE: `${LOCK_STALE_MS / 1000}s`,
      },
    });
    const ws = workspace;
    const server = sink;

    const paused = ws.start(['send-due'], { NEWSLETTER_FAILPOINTS: point });
    await paused.waitForFailpoint(point);
    expect(server.messages).toHaveLength(sentBeforeStop);
    const [pausedRun] = await ws.runs();
    expect(pausedRun).toMatchObject({ pid: paused.pid, endedAt: null });
    const pausedRunId = pausedRun!.id;
    await waitForStaleLeaseAndLock(ws, pausedRunId);

    // The next run takes over: the stopped run's claims become unknown, the rest is sent.
    const takeover = await ws.run(['send-due']);
    expect(takeover).toMatchObject({ code: PARTLY_FAILED, stdout: '' });
    expect(takeover.stderr).toContain(`${BATCH} deliveries of crashed runs are now unknown`);
    const shown = await ws.show();
    expect(shown.status).toBe('sent');
    expect(shown.counts).toMatchObject({
      audience,
      sent: audience - BATCH,
      unknown: BATCH,
      claimed: 0,
      retry: 0,
      pending: 0,
    });
    const unknown = ws.ledger().filter((row) => row.state === 'unknown');
    expect(unknown.every((row) => row.run_id === pausedRunId)).toBe(true);
    expect(server.messages).toHaveLength(audience - BATCH + sentBeforeStop);

    // The stopped run wakes up. Whatever it tries to write is refused by the fence.
    const before = snapshot(ws, pausedRunId);
    paused.signal('SIGCONT');
    const woke = await paused.exited;
    expect(woke).toMatchObject({ code: LOST_LEASE, stdout: '', timedOut: false });
    expect(woke.stderr).toMatch(/stopped: (it lost its lease|its run lock was taken or removed)/);
    expect(snapshot(ws, pausedRunId)).toEqual(before);

    expect(ws.addresses.filter((address) => server.received(address) > 1)).toEqual([]);
    expect(server.messages).toHaveLength(audience - BATCH + sentBeforeStop);
    const runs = await ws.runs();
    expect(runs.find((run) => run.id === pausedRunId)).toMatchObject({ outcome: 'lost' });
  });

  it("the woken run leaves the new holder's lock alone: a crash of the new holder is still taken over at once", async () => {
    const sink = await resources.sink();
    const workspace = await resources.workspace({
      recipients: 30,
      transport: sink.url,
      env: {
        NEWSLETTER_BATCH: String(BATCH),
        NEWSLETTER_LEASE: '2s',
        NEWSLETTER_LOCK_STALE: `${LOCK_STALE_MS / 1000}s`,
      },
    });
    const ws = workspace;
    const server = sink;
    const lockPath = `${ws.dbPath}.lock`;

    const first = ws.start(['send-due'], { NEWSLETTER_FAILPOINTS: 'after-claim' });
    await first.waitForFailpoint('after-claim');
    const [firstRun] = await ws.runs();
    await waitForStaleLeaseAndLock(ws, firstRun!.id);

    // The second run takes the stale lock over and is itself held at its first claim.
    const second = ws.start(['send-due'], { NEWSLETTER_FAILPOINTS: 'after-claim', NEWSLETTER_LEASE: '60s' });
    await second.waitForFailpoint('after-claim');
    expect(JSON.parse(await readFile(`${lockPath}.owner`, 'utf8'))).toMatchObject({ pid: second.pid });

    first.signal('SIGCONT');
    expect(await first.exited).toMatchObject({ code: LOST_LEASE, stdout: '' });
    // Giving up a lock that was taken over must not touch the new holder's lock or owner file.
    expect(existsSync(lockPath)).toBe(true);
    expect(JSON.parse(await readFile(`${lockPath}.owner`, 'utf8'))).toMatchObject({ pid: second.pid });

    // The second run crashes. The next run, which would wait a minute for a stale lock, takes
    // the dead owner's lock over at once, because the owner file still names it.
    second.signal('SIGKILL');
    await second.exited;
    const third = await ws.run(['send-due'], { NEWSLETTER_LOCK_STALE: '60s' });
    expect(third).toMatchObject({ code: PARTLY_FAILED, stdout: '' });
    expect(third.stderr).toContain(`${BATCH} deliveries of crashed runs are now unknown`);

    const shown = await ws.show();
    expect(shown.status).toBe('sent');
    expect(shown.counts).toMatchObject({ sent: 30 - 2 * BATCH, unknown: 2 * BATCH, claimed: 0, pending: 0 });
    expect(ws.addresses.filter((address) => server.received(address) > 1)).toEqual([]);
    expect(server.messages).toHaveLength(30 - 2 * BATCH);
  });
});
