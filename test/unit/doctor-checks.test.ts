/** The doctor's judgements: from what was observed to ok, warning or problem, and what to do. */
import { describe, expect, it } from 'vitest';
import {
  configCheck,
  hostBindingCheck,
  hostsCheck,
  integrityCheck,
  type LockObservation,
  ledgerChecks,
  lockCheck,
  schemaCheck,
} from '../../src/doctor/checks.js';
import type { Config } from '../../src/config.js';
import type { DeliveryCounts, Newsletter, RunInfo } from '../../src/domain/types.js';
import { newsletterFixture } from '../helpers/store-fixtures.js';

const NOW = Date.parse('2026-12-01T09:00:00Z');

function run(partial: Partial<RunInfo>): RunInfo {
  return {
    id: 1,
    hostId: 'h-a',
    hostname: 'mail1',
    pid: 100,
    pidScope: null,
    startedAt: NOW - 60_000,
    leaseUntil: NOW + 30_000,
    endedAt: null,
    outcome: null,
    counts: { sent: 0, failed: 0, retry: 0, unknown: 0, skipped: 0 },
    error: null,
    ...partial,
  };
}

function newsletter(partial: Partial<Newsletter>): Newsletter {
  return newsletterFixture({
    subject: 'News',
    templatePath: '/t.mjml',
    lists: ['l'],
    status: 'sent',
    scheduledAt: NOW - 3_600_000,
    createdAt: NOW - 7_200_000,
    ...partial,
  });
}

const counts = (partial: Partial<DeliveryCounts> = {}): DeliveryCounts => ({
  audience: 10,
  pending: 0,
  claimed: 0,
  sent: 10,
  failed: 0,
  retry: 0,
  unknown: 0,
  skipped: 0,
  ...partial,
});

describe('lockCheck', () => {
  const base: LockObservation = {
    path: '/db.lock',
    exists: true,
    fresh: true,
    refreshedAt: NOW - 5_000,
    owner: null,
  };
  const context = (alive: boolean) => ({ now: NOW, hostname: 'mail1', isProcessAlive: () => alive });

  it('free', () => {
    expect(lockCheck({ ...base, exists: false, fresh: false }, [], context(true))).toMatchObject({
      level: 'ok',
    });
  });

  it('held by a live run whose lease is alive: ok, naming the pid, the run and the lease', () => {
    const result = lockCheck(
      { ...base, owner: { pid: 100, hostname: 'mail1', since: NOW - 60_000 } },
      [run({ id: 7 })],
      context(true),
    );
    expect(result.level).toBe('ok');
    expect(result.message).toContain('pid 100 on mail1 since 2026-12-01T08:59:00Z');
    expect(result.message).toContain('run 7');
    expect(result.message).toContain('alive until 2026-12-01T09:00:30Z');
  });

  it('held by a live process whose run lease expired: a warning', () => {
    const result = lockCheck(
      { ...base, owner: { pid: 100, hostname: 'mail1', since: NOW - 600_000 } },
      [run({ id: 7, leaseUntil: NOW - 1 })],
      context(true),
    );
    expect(result.level).toBe('warning');
    expect(result.message).toContain('expired');
  });

  it('left by a process that is gone: a warning that the next run takes it over', () => {
    const result = lockCheck(
      { ...base, owner: { pid: 4242, hostname: 'mail1', since: NOW - 60_000 } },
      [],
      context(false),
    );
    expect(result.level).toBe('warning');
    expect(result.message).toContain('pid 4242');
    expect(result.message).toContain('gone');
    expect(result.fix).toContain('takes');
  });

  it('stale (not refreshed): a warning', () => {
    const result = lockCheck({ ...base, fresh: false, refreshedAt: NOW - 600_000 }, [], context(false));
    expect(result.level).toBe('warning');
    expect(result.message).toContain('stale');
  });
});

describe('host checks', () => {
  it('a binding to another host is a problem naming both ids and `host adopt`', () => {
    const [result] = hostBindingCheck('h-original', { hostId: 'h-clone', source: 'env' });
    expect(result?.level).toBe('problem');
    expect(result?.message).toContain('h-original');
    expect(result?.message).toContain('h-clone');
    expect(result?.fix).toContain('newsletter host adopt');
  });

  it('a host id without a per-instance signal adds a warning', () => {
    const results = hostBindingCheck('h', {
      hostId: 'h',
      source: 'machine-id',
      warning: 'rests on machine-id',
    });
    expect(results.map((r) => r.level)).toEqual(['ok', 'warning']);
  });

  it('runs from two hosts: a warning listing both', () => {
    const result = hostsCheck(
      [run({ id: 2, hostId: 'h-b', hostname: 'clone' }), run({ id: 1, hostId: 'h-a', hostname: 'mail1' })],
      'h-a',
    );
    expect(result.level).toBe('warning');
    expect(result.message).toContain('h-a (bound) on mail1');
    expect(result.message).toContain('h-b on clone');
    expect(hostsCheck([run({})], 'h-a').level).toBe('ok');
  });
});

describe('ledger checks', () => {
  it('unknown deliveries are a problem; a failed build, a sending newsletter without a live run and an overdue one are warnings', () => {
    const results = ledgerChecks(
      [
        { newsletter: newsletter({ id: 1 }), counts: counts({ unknown: 2, sent: 8 }) },
        {
          newsletter: newsletter({ id: 2, status: 'failed', failureReason: 'bad tag\nmore' }),
          counts: counts(),
        },
        { newsletter: newsletter({ id: 3, status: 'sending' }), counts: counts({ pending: 4, sent: 6 }) },
        { newsletter: newsletter({ id: 4, status: 'scheduled' }), counts: counts({ pending: 10, sent: 0 }) },
      ],
      [run({ leaseUntil: NOW - 1 })],
      NOW,
    );
    expect(results.map((r) => [r.name, r.level])).toEqual([
      ['unknown', 'problem'],
      ['build', 'warning'],
      ['sending', 'warning'],
      ['due', 'warning'],
    ]);
    expect(results[0]?.message).toContain('newsletter 1: 2 unknown');
    expect(results[0]?.fix).toContain('reconcile');
    expect(results[1]?.message).toContain('2 (bad tag)');
  });

  it('stranded and cancelled-retry rows are problems, a sending newsletter with nothing to claim a warning, each with its command', () => {
    const results = ledgerChecks(
      [
        {
          newsletter: newsletter({ id: 1, status: 'sending' }),
          counts: counts({ sent: 7, claimed: 3 }),
          stranded: 3,
        },
        { newsletter: newsletter({ id: 2, status: 'cancelled' }), counts: counts({ sent: 8, retry: 2 }) },
        { newsletter: newsletter({ id: 3, status: 'sending' }), counts: counts({ pending: 4, sent: 6 }) },
      ],
      [],
      NOW,
    );
    expect(results.map((r) => [r.name, r.level])).toEqual([
      ['unknown', 'ok'],
      ['stranded', 'problem'],
      ['cancelled-retry', 'problem'],
      ['sending-idle', 'warning'],
      ['sending', 'warning'],
    ]);
    const [, stranded, retries, idle, sending] = results;
    expect(stranded?.message).toContain('newsletter 1: 3 deliveries claimed by a run that has ended');
    expect(stranded?.fix).toContain('`newsletter reconcile 1 --mark-sent|--resend [EMAIL…]`');
    expect(retries?.message).toContain('newsletter 2 is cancelled, but 2 deliveries wait for a retry');
    expect(retries?.fix).toContain('`newsletter reconcile 2 --mark-sent`');
    expect(idle?.message).toContain(
      'newsletter 1 is sending, but no run is live and nothing is left to claim',
    );
    // The one with something left to claim keeps the between-runs hint; newsletter 1 is not in it.
    expect(sending?.message).toMatch(/^newsletter 3 \(4 to go\) is sending/);
  });

  it('an open run, even one whose lease ran out, leaves a sending newsletter to it', () => {
    const results = ledgerChecks(
      [{ newsletter: newsletter({ id: 1, status: 'sending' }), counts: counts({ sent: 10 }) }],
      [run({ leaseUntil: NOW - 1 })],
      NOW,
    );
    expect(results.map((r) => r.name)).not.toContain('sending-idle');
  });

  it('a live run makes sending and due normal', () => {
    const results = ledgerChecks(
      [{ newsletter: newsletter({ id: 3, status: 'sending' }), counts: counts({ pending: 4 }) }],
      [run({})],
      NOW,
    );
    expect(results).toEqual([expect.objectContaining({ name: 'unknown', level: 'ok' })]);
  });
});

describe('small checks', () => {
  it('schema, integrity and configuration', () => {
    expect(schemaCheck({ current: 1, latest: 1 }).level).toBe('ok');
    expect(schemaCheck({ current: 0, latest: 1 })).toMatchObject({
      level: 'problem',
      fix: expect.stringContaining('init'),
    });
    expect(integrityCheck(['ok']).level).toBe('ok');
    expect(integrityCheck(['*** in database main ***', 'Page 3 is never used']).level).toBe('problem');
    const config = { envFile: null } as unknown as Config;
    expect(configCheck(config, []).level).toBe('ok');
    expect(configCheck(config, ['NEWSLETTER_SECRET is not set.']).level).toBe('problem');
  });
});
