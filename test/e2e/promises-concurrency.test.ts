/**
 * Promise 1 under concurrency (issue 3, tests 1 and 2): eight `send-due` processes started together
 * against one SQLite database, the way clones of a server with the same crontab did it to the
 * mailer this project replaces.
 *
 * 1. With the file lock defeated (each process has its own lock folder, as separate hosts or a
 *    network file system would), the database alone must keep every recipient to one message.
 * 2. With the lock working, one run sends and the other seven leave at once, silently, with the
 *    lock-held exit code.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { perTest } from '../helpers/workspace.js';

const RUNS = 8;
const LOCK_HELD = 6;

const resources = perTest();

describe('promise 1: concurrent runs never send twice', () => {
  it('8 runs with the file lock defeated: every recipient exactly once, ledger sent = audience', async () => {
    const audience = 300;
    const sink = await resources.sink();
    const workspace = await resources.workspace({
      recipients: audience,
      transport: sink.url,
      env: { NEWSLETTER_BATCH: '10' },
    });
    const ws = workspace;

    // Each run holds its first claim (failpoint after-claim) until all eight are inside the send
    // loop; then all are resumed at once, so they race for the remaining recipients for real
    // instead of one fast run doing all the work before the others start.
    const runs = await Promise.all(
      Array.from({ length: RUNS }, async (_, i) => {
        const lockDir = path.join(ws.dir, `locks-${i}`);
        await mkdir(lockDir);
        // Eight MJML builds share two cores: a generous hard timeout.
        return ws.start(
          ['send-due'],
          { NEWSLETTER_LOCK_DIR: lockDir, NEWSLETTER_FAILPOINTS: 'after-claim' },
          50_000,
        );
      }),
    );
    await Promise.all(runs.map((run) => run.waitForFailpoint('after-claim', 40_000)));
    for (const run of runs) run.signal('SIGCONT');
    const results = await Promise.all(runs.map((run) => run.exited));

    // The promise first: nobody twice, whatever else went wrong.
    const duplicated = ws.addresses.filter((address) => sink!.received(address) > 1);
    expect(duplicated).toEqual([]);
    for (const result of results) {
      expect(result).toMatchObject({ code: 0, timedOut: false, stdout: '' });
      expect(result.stderr).toBe('failpoint:after-claim\n');
    }
    expect(ws.addresses.filter((address) => sink!.received(address) === 0)).toEqual([]);
    expect(sink.messages).toHaveLength(audience);
    expect(sink.total).toBe(audience);

    const shown = await ws.show();
    expect(shown.status).toBe('sent');
    expect(shown.counts).toMatchObject({ audience, sent: audience, unknown: 0, claimed: 0, pending: 0 });
    // The work was really shared: every run registered, and each sent some of it.
    const runRows = await ws.runs();
    expect(runRows).toHaveLength(RUNS);
    expect(runRows.every((run) => run.outcome === 'ok' && run.counts.sent > 0)).toBe(true);
    expect(runRows.reduce((sum, run) => sum + run.counts.sent, 0)).toBe(audience);
  });

  it('8 runs with the lock working: one sends, seven exit 6 at once and print nothing', async () => {
    const audience = 200;
    const sink = await resources.sink();
    const workspace = await resources.workspace({ recipients: audience, transport: sink.url });
    const ws = workspace;

    // The first run takes the lock, claims a batch and is held there (SIGSTOP), still holding it.
    const first = ws.start(['send-due'], { NEWSLETTER_FAILPOINTS: 'after-claim' });
    await first.waitForFailpoint('after-claim');

    const others = Array.from({ length: RUNS - 1 }, () => ws.start(['send-due']));
    const results = await Promise.all(others.map((run) => run.exited));
    for (const result of results) {
      // Under cron (stdout not a terminal) a busy lock is not news: no output at all.
      expect(result).toEqual({ code: LOCK_HELD, signal: null, stdout: '', stderr: '', timedOut: false });
    }
    expect(first.running()).toBe(true);
    expect(sink.messages).toHaveLength(0);

    first.signal('SIGCONT');
    const finished = await first.exited;
    expect(finished).toMatchObject({ code: 0, stdout: '', stderr: 'failpoint:after-claim\n' });

    expect(ws.addresses.filter((address) => sink!.received(address) !== 1)).toEqual([]);
    expect(sink.total).toBe(audience);
    const shown = await ws.show();
    expect(shown.status).toBe('sent');
    expect(shown.counts).toMatchObject({ audience, sent: audience, unknown: 0, claimed: 0, pending: 0 });
    // The seven never got as far as registering a run.
    const runRows = await ws.runs();
    expect(runRows).toHaveLength(1);
    expect(runRows[0]).toMatchObject({ pid: first.pid, outcome: 'ok' });
  });
});
