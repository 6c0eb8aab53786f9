/**
 * Exit codes that mean "act now" (issue 15), through the built CLI against a real SMTP server:
 *
 * - one ordinary 550 5.1.1 is list hygiene: the address is suppressed, the run exits 0 and cron
 *   mails nothing; `--verbose`, `show` and `status` say what happened;
 * - failures for other reasons above the documented rate (src/domain/failure-alarm.ts) exit 8,
 *   with a readable paragraph under cron that says what to do;
 * - after a `kill -9`, `status` says the run's process is gone instead of "running", and `show`
 *   prints the Message-ID of each `unknown` delivery, to look up in the mail server's log.
 */
import { describe, expect, it } from 'vitest';
import { describeRun } from '../helpers/cli.js';
import { perTest, type Workspace } from '../helpers/workspace.js';

const resources = perTest();

/** Runs a `--json` command, expects exit 0, parses its stdout. */
async function json<T>(ws: Workspace, args: string[]): Promise<T> {
  return JSON.parse((await ws.ok(args)).stdout) as T;
}

interface StatusJson {
  recent: { id: number; counts: { failed: number }; hardBounces: number }[];
  liveRuns: { id: number; pid: number; processGone: boolean }[];
  attention: string[];
}

interface ShowJson {
  counts: { failed: number; unknown: number };
  hardBounces: number;
  attention: { address: string; state: string; messageId: string; suppressed: boolean }[];
}

describe('hard bounces are list hygiene', () => {
  it('one 550 5.1.1: failed and suppressed, exit 0 and silent under cron; show and status report it', async () => {
    const sink = await resources.sink();
    const ws = await resources.workspace({ recipients: 6, transport: sink.url });
    const gone = ws.addresses[2]!;
    sink.addFault({
      to: gone,
      fault: {
        kind: 'rejectRcpt',
        code: 550,
        text: `5.1.1 <${gone}>: Recipient address rejected: user unknown`,
      },
    });

    const run = await ws.run(['send-due']);
    expect(run, describeRun(['send-due'], run)).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(
      ws
        .ledger()
        .filter((row) => row.state === 'failed')
        .map((row) => row.address),
    ).toEqual([gone]);

    const shown = await json<ShowJson>(ws, ['show', String(ws.newsletterId), '--json']);
    expect(shown.counts.failed).toBe(1);
    expect(shown.hardBounces).toBe(1);
    expect(shown.attention).toEqual([
      expect.objectContaining({ address: gone, state: 'failed', suppressed: true }),
    ]);
    const text = await ws.ok(['show', String(ws.newsletterId)]);
    expect(text.stdout).toMatch(
      new RegExp(`failed +${gone.replace(/\./g, '\\.')} .*550 5\\.1\\.1.*\\(hard bounce: suppressed\\)`),
    );
    expect(text.stdout).toContain('1 failed address is a hard bounce (5.1.x, no such user), now suppressed');
    expect(text.stderr).toBe('');

    const status = await json<StatusJson>(ws, ['status', '--json']);
    expect(status.recent[0]).toMatchObject({ id: ws.newsletterId, counts: { failed: 1 }, hardBounces: 1 });
    expect(status.attention).toEqual([]);
    const screen = await ws.ok(['status']);
    expect(screen.stdout).toContain('5 sent, 1 failed (1 hard bounce, now suppressed)');
  });

  it('--verbose says it, in the summary and in the event line', async () => {
    const sink = await resources.sink();
    const ws = await resources.workspace({ recipients: 4, transport: sink.url });
    const gone = ws.addresses[0]!;
    sink.addFault({ to: gone, fault: { kind: 'rejectRcpt', code: 550, text: '5.1.1 user unknown' } });
    const run = await ws.run(['--verbose', 'send-due']);
    expect(run.code, describeRun(['--verbose', 'send-due'], run)).toBe(0);
    expect(run.stdout).toMatch(/^run \d+: 3 sent, 1 failed \(1 hard bounce, now suppressed\)/);
    expect(run.stdout).toContain('hard bounces (5.1.x, no such user) are suppressed');
    expect(run.stderr).toMatch(/newsletter \d+: 3 sent, 1 failed \(1 hard bounce, now suppressed\)/);
  });
});

describe('failures that say the relay or the list is broken', () => {
  it('1 of 10 refused by policy (10 %, over 5 %): exit 8, and cron mails a readable paragraph', async () => {
    const sink = await resources.sink();
    const ws = await resources.workspace({ recipients: 10, transport: sink.url });
    sink.addFault({
      to: ws.addresses[4]!,
      fault: { kind: 'rejectRcpt', code: 550, text: '5.7.1 message refused by local policy' },
    });
    const run = await ws.run(['send-due']);
    expect(run.code, describeRun(['send-due'], run)).toBe(8);
    expect(run.stdout).toBe('');
    // Text, not JSON, for the person who reads cron's mail.
    expect(run.stderr.split('\n').filter((line) => line.startsWith('{'))).toEqual([]);
    expect(run.stderr).toContain('error: send-due finished, but too many recipients failed.');
    expect(run.stderr).toContain(
      '1 of 10 attempts (10 %) failed for other reasons than a hard bounce, more than 5 %: the relay or the list may be broken.',
    );
    expect(run.stderr).toContain('`newsletter show ID`');
    // Not a hard bounce: nothing was suppressed.
    expect(ws.query('SELECT address FROM suppressions')).toEqual([]);
  });
});

describe('a run killed with SIGKILL', () => {
  it('status says its process is gone; show prints the Message-ID of each unknown delivery', async () => {
    const sink = await resources.sink();
    const ws = await resources.workspace({ recipients: 8, transport: sink.url });
    const point = 'after-send-before-record';
    const crashed = ws.start(['send-due'], { NEWSLETTER_FAILPOINTS: point });
    await crashed.waitForFailpoint(point);

    // Stopped at the failpoint, the process exists: running.
    const alive = await json<StatusJson>(ws, ['status', '--json']);
    expect(alive.liveRuns).toEqual([expect.objectContaining({ pid: crashed.pid, processGone: false })]);

    crashed.signal('SIGKILL');
    expect((await crashed.exited).signal).toBe('SIGKILL');
    const dead = await json<StatusJson>(ws, ['status', '--json']);
    expect(dead.liveRuns).toEqual([expect.objectContaining({ pid: crashed.pid, processGone: true })]);
    expect(dead.attention).toEqual(
      expect.arrayContaining([
        expect.stringContaining(`(pid ${crashed.pid}) is open but its process is gone`),
      ]),
    );
    const screen = await ws.ok(['status']);
    expect(screen.stdout).toMatch(
      new RegExp(
        `not running: run \\d+ on \\S+ \\(pid ${crashed.pid}\\) since [^:]+:\\d\\d(?::\\d\\d)? [+-]\\d\\d:\\d\\d: its process is gone`,
      ),
    );
    expect(screen.stdout).not.toMatch(/^running:/m);
    const runs = await json<{ pid: number; outcome: string | null; processGone: boolean }[]>(ws, [
      'runs',
      '--json',
    ]);
    expect(runs.find((run) => run.pid === crashed.pid)).toMatchObject({ outcome: null, processGone: true });
    expect((await ws.ok(['runs'])).stdout).toMatch(new RegExp(`\\b${crashed.pid}\\b.* gone `));

    // The next run ends the dead one: what it had handed over is unknown (exit 8).
    const next = await ws.run(['send-due']);
    expect(next.code, describeRun(['send-due'], next)).toBe(8);
    const shown = await json<ShowJson>(ws, ['show', String(ws.newsletterId), '--json']);
    const unknown = shown.attention.filter((row) => row.state === 'unknown');
    expect(unknown.length).toBe(shown.counts.unknown);
    expect(unknown.length).toBeGreaterThan(0);
    const text = await ws.ok(['show', String(ws.newsletterId)]);
    for (const row of unknown) {
      const line = text.stdout.split('\n').find((l) => l.includes(row.address));
      expect(line, text.stdout).toMatch(/^ +unknown +/);
      expect(line).toContain(`Message-ID ${row.messageId}`);
    }
    expect((await json<StatusJson>(ws, ['status', '--json'])).liveRuns).toEqual([]);
  });
});
