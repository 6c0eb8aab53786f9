/**
 * `status --json`: the documented shape (docs/operations.md, "status --json") with a newsletter
 * in each state a person asks about: one sent, one half sent (sending, with a rate and an
 * estimated end), one due, one scheduled for later. And the one-screen text form.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, makeWorkspace, type Workspace } from '../helpers/cli.js';

let ws: Workspace;
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

beforeAll(async () => {
  assertBuilt();
  ws = await makeWorkspace('newsletter-status-');
  ws.env.NEWSLETTER_TRANSPORT = 'file:./outbox';
  await ws.ok(['init']);
  const { file } = await ws.writeCsv(6);
  await ws.ok(['recipients', 'import', file, '--list', 'readers']);
  const template = path.join(ws.copyTemplates(), 'welcome.mjml');
  const create = async (subject: string, at: string) =>
    ws.ok(['create', '--subject', subject, '--template', template, '--list', 'readers', '--at', at]);
  await create('Sent one', 'now');
  await ws.ok(['send-due']);
  await create('Half sent', 'now');
  await ws.ok(['send-due', '--max-messages', '2']);
  await create('Due one', 'now');
  await create('Later one', '+2h');
});

afterAll(async () => ws?.cleanup());

const counts = {
  audience: expect.any(Number),
  sent: expect.any(Number),
  failed: expect.any(Number),
  skipped: expect.any(Number),
  unknown: expect.any(Number),
  retry: expect.any(Number),
  claimed: expect.any(Number),
  pending: expect.any(Number),
};

describe('status', () => {
  it('--json has the documented keys, in every section', async () => {
    const status = await ws.json<Record<string, unknown>>(['status', '--json']);
    expect(Object.keys(status)).toEqual([
      'generatedAt',
      'database',
      'due',
      'sending',
      'recent',
      'upcoming',
      'attention',
      'newsletters',
      'liveRuns',
      'lastRun',
      'hosts',
      'boundHostId',
      'quota',
      'unsettled',
      'drafts',
    ]);
    expect(status).toMatchObject({
      generatedAt: expect.stringMatching(ISO),
      database: ws.db,
      due: [
        {
          id: 3,
          subject: 'Due one',
          lists: ['readers'],
          scheduledAt: expect.stringMatching(ISO),
          audience: 6,
        },
      ],
      sending: [
        {
          id: 2,
          subject: 'Half sent',
          startedAt: expect.stringMatching(ISO),
          counts: { ...counts, audience: 6, sent: 2, pending: 4 },
          progress: { done: 2, total: 6, percent: 33.3 },
          ratePerSecond: expect.any(Number),
          rateSource: 'last-run',
          estimatedEnd: expect.stringMatching(ISO),
        },
      ],
      recent: [
        {
          id: 1,
          subject: 'Sent one',
          finishedAt: expect.stringMatching(ISO),
          counts: { ...counts, sent: 6 },
        },
      ],
      upcoming: [
        {
          id: 4,
          subject: 'Later one',
          lists: ['readers'],
          scheduledAt: expect.stringMatching(ISO),
          audience: 6,
        },
      ],
      attention: ['newsletter 2 is sending but no run is live: is the cron line for send-due in place?'],
      liveRuns: [],
      lastRun: {
        id: 2,
        hostId: 'test-host-a',
        hostname: expect.any(String),
        startedAt: expect.stringMatching(ISO),
        endedAt: expect.stringMatching(ISO),
        outcome: 'budget',
        counts: { sent: 2, failed: 0, retry: 0, unknown: 0, skipped: 0 },
      },
      hosts: ['test-host-a'],
      boundHostId: 'test-host-a',
      quota: null,
      // Newsletter 2 still has recipients to claim: the next run carries on, nothing to settle.
      unsettled: [],
      drafts: [],
    });
    const sending = (status.sending as { ratePerSecond: number; estimatedEnd: string }[])[0]!;
    expect(sending.ratePerSecond).toBeGreaterThan(0);
    expect(Date.parse(sending.estimatedEnd)).toBeGreaterThanOrEqual(Date.parse(status.generatedAt as string));
    // Every newsletter, with its counts, as before.
    expect((status.newsletters as { id: number; status: string }[]).map((n) => [n.id, n.status])).toEqual([
      [1, 'sent'],
      [2, 'sending'],
      [3, 'scheduled'],
      [4, 'scheduled'],
    ]);
  });

  it('status ID --json has the same shape, for that newsletter only', async () => {
    const status = await ws.json<{
      newsletters: { id: number }[];
      sending: { id: number }[];
      due: unknown[];
    }>(['status', '2', '--json']);
    expect(status.newsletters.map((n) => n.id)).toEqual([2]);
    expect(status.sending.map((n) => n.id)).toEqual([2]);
    expect(status.due).toEqual([]);
  });

  it('the text form is one screen: due, sending with progress and rate, recently sent, scheduled', async () => {
    // Times as people read them: in TZ (or the zone typed), with the offset (issue 14).
    const { stdout, stderr } = await ws.ok(['status']);
    expect(stdout).toContain('Due now (1)');
    expect(stdout).toMatch(
      /#3 Due one · due \d{4}-\d\d-\d\d \d\d:\d\d(?::\d\d)? [+-]\d\d:\d\d · 6 recipients \(readers\)/,
    );
    expect(stdout).toMatch(
      /#2 Half sent · 2\/6 \(33\.3%\) · [\d.]+\/s \(last run\) · ends about \d{4}-\d\d-\d\d \d\d:\d\d(?::\d\d)? [+-]\d\d:\d\d \(in \d+[smh]\)/,
    );
    expect(stdout).toMatch(
      /Recently sent\n {2}#1 Sent one · finished \d{4}-\d\d-\d\d \d\d:\d\d(?::\d\d)? [+-]\d\d:\d\d · 6 sent, 0 failed, 0 skipped, 0 unknown/,
    );
    expect(stdout).toMatch(
      /Scheduled\n {2}#4 Later one · at \d{4}-\d\d-\d\d \d\d:\d\d(?::\d\d)? [+-]\d\d:\d\d · 6 recipients/,
    );
    expect(stderr).toContain('newsletter 2 is sending but no run is live');
  });
});

describe('status with an hourly quota', () => {
  it('--json and the screen show what this clock hour has used of NEWSLETTER_HOURLY_LIMIT', async () => {
    const own = await makeWorkspace('newsletter-status-quota-');
    try {
      own.env.NEWSLETTER_TRANSPORT = 'file:./outbox';
      own.env.NEWSLETTER_HOURLY_LIMIT = '3';
      own.env.NEWSLETTER_QUOTA_ACCOUNT = 'relay-account';
      await own.ok(['init']);
      const { file } = await own.writeCsv(5);
      await own.ok(['recipients', 'import', file, '--list', 'readers']);
      const template = path.join(own.copyTemplates(), 'welcome.mjml');
      await own.ok(['create', '--subject', 'Hi', '--template', template, '--list', 'readers', '--at', 'now']);
      const before = await own.json<{ quota: unknown }>(['status', '--json']);
      expect(before.quota).toMatchObject({ account: 'relay-account', hourlyLimit: 3, usedThisHour: 0 });

      const run = await own.run(['send-due']);
      expect(run.code, run.stderr).toBe(0);
      const after = await own.json<{ quota: Record<string, unknown> }>(['status', '--json']);
      expect(after.quota).toEqual({
        account: 'relay-account',
        hourlyLimit: 3,
        usedThisHour: 3,
        hourStart: expect.stringMatching(ISO),
        hourEnd: expect.stringMatching(ISO),
      });
      expect(Date.parse(after.quota.hourEnd as string) - Date.parse(after.quota.hourStart as string)).toBe(
        3_600_000,
      );
      const screen = await own.run(['status']);
      expect(screen.stdout).toContain('hourly quota of relay-account: 3 of 3 used this hour');
    } finally {
      await own.cleanup();
    }
  });
});
