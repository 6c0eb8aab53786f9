/**
 * SIGTERM in the middle of a send (issue 3, test 7): the run stops claiming, lets the messages in
 * flight finish and records them (`sent`, never `unknown`), gives the rest of its batch back,
 * releases the run lock and exits 10. The next run is not kept out by the lock and sends the rest,
 * nobody twice.
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { CliProcess } from '../helpers/cli-process.js';
import type { SmtpSink } from '../helpers/smtp-sink.js';
import { addressOf, type Workspace, waitUntil, perTest } from '../helpers/workspace.js';

const INTERRUPTED = 10;

const resources = perTest();

/** The promises after an interrupted run, then a normal run that finishes the newsletter. */
async function expectCleanStopThenFinish(ws: Workspace, server: SmtpSink, stopped: CliProcess) {
  const result = await stopped.exited;

  // What the server accepted is recorded as sent; nothing is left claimed or unknown.
  const shown = await ws.show();
  expect(shown.status).toBe('sending');
  expect(shown.counts).toMatchObject({ unknown: 0, claimed: 0, failed: 0 });
  expect(shown.counts.sent).toBeGreaterThan(0);
  expect(shown.counts.sent).toBe(server.total);
  const sent = new Set(
    ws
      .ledger()
      .filter((row) => row.state === 'sent')
      .map((row) => row.address),
  );
  expect(server.messages.every((m) => m.to.every((address) => sent.has(address)))).toBe(true);
  expect(await ws.runs()).toMatchObject([{ pid: stopped.pid, outcome: 'signal' }]);
  expect(result).toMatchObject({ code: INTERRUPTED, stdout: '', timedOut: false });
  expect(result.stderr).toContain('stopped on a signal; in-flight messages were recorded');

  // The lock was given back, not left for the next run to take over from a dead owner.
  const lockPath = `${ws.dbPath}.lock`;
  expect(existsSync(lockPath)).toBe(false);
  expect(existsSync(`${lockPath}.owner`)).toBe(false);

  expect(await ws.run(['send-due'])).toMatchObject({ code: 0, stdout: '', stderr: '' });
  expect(ws.addresses.filter((address) => server.received(address) !== 1)).toEqual([]);
  const done = await ws.show();
  expect(done.status).toBe('sent');
  expect(done.counts).toMatchObject({ sent: ws.addresses.length, unknown: 0, retry: 0, pending: 0 });
}

describe('SIGTERM stops a run cleanly', () => {
  it('SIGTERM delivered as a claimed batch starts going out: recorded as sent, 0 unknown, lock released, exit 10', async () => {
    const sink = await resources.sink();
    const workspace = await resources.workspace({ recipients: 30, transport: sink.url });
    const ws = workspace;

    // Held right after its first claim; the SIGTERM waits (the process is stopped) and arrives
    // as the run resumes and hands the batch to the transport.
    const run = ws.start(['send-due'], { NEWSLETTER_FAILPOINTS: 'after-claim' });
    await run.waitForFailpoint('after-claim');
    run.signal('SIGTERM');
    run.signal('SIGCONT');

    await expectCleanStopThenFinish(ws, sink, run);
  });

  it('SIGTERM while messages are on the wire: the in-flight ones finish and are recorded', async () => {
    const sink = await resources.sink();
    const workspace = await resources.workspace({ recipients: 200, transport: sink.url });
    const ws = workspace;
    const server = sink;

    const run = ws.start(['send-due']);
    await waitUntil('the server has seen 12 messages', () => server.messages.length >= 12 || !run.running());
    expect(run.running()).toBe(true);
    run.signal('SIGTERM');

    await expectCleanStopThenFinish(ws, server, run);
  });
});

describe('a second signal aborts at once', () => {
  it('SIGTERM twice while a reply hangs: exit 10 at once; the next run holds the batch as unknown and sends nobody twice', async () => {
    const first = addressOf(0);
    const sink = await resources.sink({ faults: [{ to: first, fault: { kind: 'hangAfterData' } }] });
    const workspace = await resources.workspace({
      recipients: 20,
      transport: sink.url,
      env: { NEWSLETTER_SMTP_TIMEOUT: '60s' },
    });
    const ws = workspace;
    const server = sink;
    expect(ws.addresses).toContain(first);

    const run = ws.start(['send-due']);
    // The server has the whole message and never answers: the run waits for that reply.
    await waitUntil('the server holds the first message', () =>
      server.messages.some((m) => m.to.includes(first)),
    );
    run.signal('SIGTERM');
    await run.waitForStderr('a second signal aborts at once');
    // The first signal alone would wait for the hanging reply (60 s); the second ends it now.
    run.signal('SIGTERM');
    const result = await run.exited;
    expect(result).toMatchObject({ code: INTERRUPTED, timedOut: false });
    expect(result.stderr).toContain('aborting at once');

    // The aborted run recorded nothing of its batch; the next run finds its process gone, takes
    // over its lock at once, holds those rows as unknown (never resent) and sends everyone else.
    const next = await ws.run(['send-due']);
    expect(next.code).toBe(8);
    const shown = await ws.show();
    expect(shown.status).toBe('sent');
    expect(shown.counts.unknown).toBeGreaterThan(0);
    expect(shown.counts.unknown).toBeLessThanOrEqual(5);
    expect(shown.counts.sent + shown.counts.unknown).toBe(ws.addresses.length);
    // Nobody twice; whoever the server never got is held as unknown (the aborted batch).
    expect(ws.addresses.filter((address) => server.received(address) > 1)).toEqual([]);
    const unknown = new Set(
      ws
        .ledger()
        .filter((row) => row.state === 'unknown')
        .map((row) => row.address),
    );
    expect(ws.addresses.filter((address) => server.received(address) === 0 && !unknown.has(address))).toEqual(
      [],
    );
  });
});
