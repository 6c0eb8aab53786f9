/**
 * Several hosts, one PostgreSQL database, one newsletter: three simulated hosts (each its own
 * NEWSLETTER_HOST_ID and lock folder, as three machines would have) start three `send-due`
 * processes each, all at once, against a real SMTP server. Every recipient gets exactly one
 * message, the hosts share the work, and the ledger says `sent` for each, once.
 */
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import {
  describePostgres,
  hostsWorkspace,
  killChildren,
  type PgCluster,
  requireBuiltCli,
  sharedCluster,
  startCli,
  stopSharedCluster,
} from '../helpers/postgres.js';
import { type SmtpSink, startSmtpSink } from '../helpers/smtp-sink.js';

const RECIPIENTS = 5000;
const HOSTS = ['host-a', 'host-b', 'host-c'];
const PROCESSES_PER_HOST = 3;

describePostgres('several hosts share one newsletter (PostgreSQL)', () => {
  let cluster: PgCluster;
  let sink: SmtpSink;

  beforeAll(async () => {
    requireBuiltCli();
    cluster = await sharedCluster();
    sink = await startSmtpSink();
  });

  afterEach(() => {
    expect(killChildren(), 'a CLI process outlived its test').toBe(0);
  });

  afterAll(async () => {
    await sink?.close();
    await stopSharedCluster();
  });

  it(`${HOSTS.length} hosts × ${PROCESSES_PER_HOST} processes, ${RECIPIENTS} recipients: each exactly once`, async () => {
    const workspace = await hostsWorkspace({ cluster, recipients: RECIPIENTS, transport: sink.url });
    try {
      const started = HOSTS.flatMap((host) =>
        Array.from({ length: PROCESSES_PER_HOST }, () => ({
          host,
          cli: startCli(['send-due', '--json'], workspace.env(host), {
            cwd: workspace.dir,
            timeoutMs: 100_000,
          }),
        })),
      );
      const results = await Promise.all(
        started.map(async ({ host, cli }) => ({ host, ...(await cli.exited) })),
      );

      // On each host one process holds the run lock and sends; the others leave at once (6).
      for (const result of results) expect([0, 6], result.stderr).toContain(result.code);
      for (const host of HOSTS) {
        expect(results.filter((r) => r.host === host && r.code === 0)).toHaveLength(1);
      }

      // The SMTP server: every recipient once, nobody twice, nobody else.
      expect(sink.total).toBe(RECIPIENTS);
      const counts = new Map<string, number>();
      for (const message of sink.messages) {
        for (const to of message.to) counts.set(to, (counts.get(to) ?? 0) + 1);
      }
      expect(counts.size).toBe(RECIPIENTS);
      expect([...counts.values()].every((n) => n === 1)).toBe(true);
      expect(new Set(sink.messages.map((m) => m.messageId)).size).toBe(RECIPIENTS);

      // The ledger: one `sent` row per recipient, the newsletter `sent`, no run left open.
      const states = await workspace.query<{ state: string; n: number }>(
        'SELECT state, count(*) AS n FROM deliveries WHERE newsletter_id = $1 GROUP BY state',
        [workspace.newsletterId],
      );
      expect(states).toEqual([{ state: 'sent', n: RECIPIENTS }]);
      const [newsletter] = await workspace.query<{ status: string }>(
        'SELECT status FROM newsletters WHERE id = $1',
        [workspace.newsletterId],
      );
      expect(newsletter?.status).toBe('sent');

      // The work was shared: every host's run sent part of it, and the runs' counts add up.
      const runs = await workspace.query<{ host_id: string; sent: number; outcome: string | null }>(
        'SELECT host_id, sent, outcome FROM runs ORDER BY id',
      );
      expect(runs).toHaveLength(HOSTS.length);
      expect(runs.every((run) => run.outcome === 'ok')).toBe(true);
      expect(runs.reduce((sum, run) => sum + run.sent, 0)).toBe(RECIPIENTS);
      for (const host of HOSTS) {
        expect(runs.find((run) => run.host_id === host)?.sent ?? 0).toBeGreaterThan(0);
      }
      const ownerCount = await workspace.query<{ runs: number }>(
        'SELECT count(DISTINCT run_id) AS runs FROM deliveries WHERE newsletter_id = $1',
        [workspace.newsletterId],
      );
      expect(ownerCount[0]?.runs).toBe(HOSTS.length);
    } finally {
      await workspace.close();
    }
  }, 150_000);
});
