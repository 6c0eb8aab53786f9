/**
 * `newsletter prune` (issue 15), through the built CLI on a real file: the ledger rows of a sent
 * newsletter go, `show` prints the same counts after as before, suppressions and opt-outs stay,
 * `--dry-run` deletes nothing, and a newsletter that is still sending is never touched.
 */
import { describe, expect, it } from 'vitest';
import { perTest, sendUntilSent } from '../helpers/workspace.js';

const resources = perTest();

describe('newsletter prune', () => {
  it('deletes the ledger of a sent newsletter and keeps what show prints, suppressions and opt-outs', async () => {
    const sink = await resources.sink({
      faults: [
        {
          to: 'reader0002@example.net',
          fault: { kind: 'rejectRcpt', code: 550, text: '5.1.1 <reader0002@example.net>: user unknown' },
        },
      ],
    });
    const ws = await resources.workspace({ recipients: 12, transport: sink.url });
    await ws.ok(['recipients', 'unsubscribe', 'reader0003@example.net']);
    await sendUntilSent(ws);
    const before = await ws.show();
    const countsLine = async () =>
      (await ws.ok(['show', String(ws.newsletterId)])).stdout
        .split('\n')
        .find((line) => line.includes('audience'));
    const shownBefore = await countsLine();
    expect(shownBefore).toContain('12: 10 sent, 1 failed, 1 skipped, 0 unknown');
    expect(before.counts).toMatchObject({ sent: 10, failed: 1, skipped: 1 });
    const suppressions = ws.query('SELECT * FROM suppressions ORDER BY address');
    expect(suppressions.length).toBeGreaterThan(0);

    const dry = await ws.run(['prune', '--sent-before', '+1d', '--dry-run']);
    expect(dry).toMatchObject({ code: 0, stderr: '' });
    expect(dry.stdout).toContain(`newsletter ${ws.newsletterId} (sent`);
    expect(dry.stdout).toContain('would delete 12 ledger rows');
    expect(ws.ledger()).toHaveLength(12);

    // Not finished before the date: nothing happens.
    const early = JSON.parse((await ws.ok(['prune', '--sent-before', '2000-01-01', '--json'])).stdout);
    expect(early.pruned).toEqual([]);
    expect(ws.ledger()).toHaveLength(12);

    const pruned = JSON.parse((await ws.ok(['prune', '--sent-before', '+1d', '--json'])).stdout);
    expect(pruned).toMatchObject({ dryRun: false, pruned: [{ id: ws.newsletterId, deliveries: 12 }] });
    expect(ws.ledger()).toEqual([]);
    expect(await ws.show()).toMatchObject({ status: 'sent', counts: before.counts });
    const shownJson = JSON.parse((await ws.ok(['show', String(ws.newsletterId), '--json'])).stdout);
    expect(shownJson.prunedAt).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    expect((await ws.ok(['show', String(ws.newsletterId)])).stdout).toMatch(
      /\n {2}pruned {5}\d{4}-\d\d-\d\d \d\d:\d\d(?::\d\d)? [+-]\d\d:\d\d: ledger rows deleted, counts kept\n/,
    );
    // The per-row details are gone with the rows; the counts line is the same.
    expect(await countsLine()).toBe(shownBefore);
    expect(ws.query('SELECT * FROM suppressions ORDER BY address')).toEqual(suppressions);
    const optedOut = JSON.parse((await ws.ok(['recipients', 'list', '--json'])).stdout) as {
      address: string;
      status: string;
    }[];
    expect(optedOut.find((s) => s.address === 'reader0003@example.net')?.status).toBe('unsubscribed');

    // Pruning again finds nothing, and says nothing under cron.
    expect(await ws.run(['prune', '--sent-before', '+1d'])).toMatchObject({
      code: 0,
      stdout: '',
      stderr: '',
    });
  });

  it('never touches a newsletter that is still sending', async () => {
    const sink = await resources.sink();
    const ws = await resources.workspace({ recipients: 12, transport: sink.url });
    await ws.ok(['send-due', '--max-messages', '5']);
    const before = ws.ledger();
    expect((await ws.show()).status).toBe('sending');
    expect(before.length).toBeGreaterThan(0);

    // Routine, so quiet under cron; said with --verbose (and in --json).
    expect(await ws.run(['prune', '--sent-before', '+1d'])).toMatchObject({
      code: 0,
      stdout: '',
      stderr: '',
    });
    const result = await ws.run(['prune', '--sent-before', '+1d', '--verbose']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`newsletter ${ws.newsletterId} is sending, not final`);
    const json = JSON.parse((await ws.ok(['prune', '--sent-before', '+1d', '--json'])).stdout);
    expect(json).toMatchObject({ pruned: [], kept: [{ id: ws.newsletterId, reason: 'not-final' }] });
    expect(ws.ledger()).toEqual(before);
    expect(ws.query('SELECT pruned_counts FROM newsletters')).toEqual([{ pruned_counts: null }]);
  });
});
