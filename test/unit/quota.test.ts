/**
 * The hourly quota's arithmetic (src/domain/quota.ts) and its configuration: which clock hour a
 * moment counts in, how much a reservation may take, and whose quota it is.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { ConfigError } from '../../src/domain/errors.js';
import { defaultQuotaAccount, QUOTA_WINDOW_MS, quotaGrant, quotaWindow } from '../../src/domain/quota.js';
import { parseTransport, type TransportSpec } from '../../src/domain/transport-spec.js';

const HOUR = 3_600_000;

describe('quotaWindow: the clock hour (UTC) a moment counts in', () => {
  it('is one hour long', () => {
    expect(QUOTA_WINDOW_MS).toBe(HOUR);
  });

  it('starts on the hour and ends (exclusive) on the next', () => {
    const at = Date.parse('2026-03-14T09:26:53.589Z');
    expect(quotaWindow(at)).toEqual({
      start: Date.parse('2026-03-14T09:00:00.000Z'),
      end: Date.parse('2026-03-14T10:00:00.000Z'),
    });
  });

  it('puts the first millisecond of an hour in that hour, the last one in the hour before', () => {
    const top = Date.parse('2026-03-14T10:00:00.000Z');
    expect(quotaWindow(top).start).toBe(top);
    expect(quotaWindow(top - 1).start).toBe(top - HOUR);
    expect(quotaWindow(top - 1).end).toBe(top);
  });

  it('is the same window for every moment inside it, and the next one after', () => {
    const start = Date.parse('2026-12-31T23:00:00.000Z');
    for (const offset of [0, 1, 59_999, 1_800_000, HOUR - 1]) {
      expect(quotaWindow(start + offset).start).toBe(start);
    }
    expect(quotaWindow(start + HOUR).start).toBe(Date.parse('2027-01-01T00:00:00.000Z'));
  });

  it('does not depend on the local time zone', () => {
    // Epoch arithmetic: the same instant is the same window on every host, whatever its TZ.
    const at = Date.parse('2026-06-01T12:34:56+05:30');
    expect(new Date(quotaWindow(at).start).toISOString()).toBe('2026-06-01T07:00:00.000Z');
  });
});

describe('quotaGrant: how much a reservation may take', () => {
  it('grants what is wanted while the hour has room', () => {
    expect(quotaGrant(0, 20, 100)).toBe(20);
    expect(quotaGrant(80, 20, 100)).toBe(20);
  });

  it('grants only what is left, then nothing', () => {
    expect(quotaGrant(90, 20, 100)).toBe(10);
    expect(quotaGrant(99, 20, 100)).toBe(1);
    expect(quotaGrant(100, 20, 100)).toBe(0);
  });

  it('grants nothing when a lowered limit is already exceeded, never a negative number', () => {
    expect(quotaGrant(150, 20, 100)).toBe(0);
  });

  it('grants nothing for nothing wanted, and whole messages only', () => {
    expect(quotaGrant(0, 0, 100)).toBe(0);
    expect(quotaGrant(0, -3, 100)).toBe(0);
    expect(quotaGrant(0, 2.7, 100)).toBe(2);
  });

  it('never hands out more than the limit in total, however the requests come', () => {
    for (const limit of [1, 7, 30, 100]) {
      let used = 0;
      let granted = 0;
      for (const wanted of [5, 1, 20, 3, 50, 2, 9, 1, 1, 100]) {
        const grant = quotaGrant(used, wanted, limit);
        expect(grant).toBeGreaterThanOrEqual(0);
        expect(grant).toBeLessThanOrEqual(wanted);
        used += grant;
        granted += grant;
      }
      expect(granted).toBe(Math.min(limit, 192));
    }
  });
});

describe('defaultQuotaAccount: whose quota it is', () => {
  const spec = (value: string): TransportSpec => {
    const parsed = parseTransport(value);
    if ('error' in parsed) throw new Error(parsed.error);
    return parsed;
  };

  it('is the SMTP login at its server, without the password or the port', () => {
    expect(defaultQuotaAccount(spec('smtp://news%40example.org:hunter2-password@smtp.example.org:587'))).toBe(
      'news@example.org@smtp.example.org',
    );
    expect(defaultQuotaAccount(spec('smtps://mailer:pw@mail.example.net'))).toBe('mailer@mail.example.net');
  });

  it('is the transport description (no secret in it) without a login', () => {
    expect(defaultQuotaAccount(spec('smtp://127.0.0.1:2525'))).toBe('smtp://127.0.0.1:2525');
    expect(defaultQuotaAccount(spec('sendmail'))).toBe('sendmail (/usr/sbin/sendmail)');
  });
});

describe('loadConfig: NEWSLETTER_HOURLY_LIMIT and NEWSLETTER_QUOTA_ACCOUNT', () => {
  let cwd: string;
  beforeAll(() => {
    cwd = mkdtempSync(path.join(tmpdir(), 'newsletter-quota-config-'));
  });
  afterAll(() => {
    rmSync(cwd, { recursive: true, force: true });
  });
  const load = (env: Record<string, string>) => loadConfig({ cwd, env, envFile: null });
  const problems = (env: Record<string, string>): string[] => {
    try {
      load(env);
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      return (error as ConfigError).details as string[];
    }
    throw new Error('expected a ConfigError');
  };

  it('has no quota when the limit is unset', () => {
    expect(load({}).quota).toBeNull();
  });

  it('counts the SMTP login by default, or the account named', () => {
    const transport = 'smtp://mailer:secret-password@smtp.example.org:587';
    expect(load({ NEWSLETTER_HOURLY_LIMIT: '500', NEWSLETTER_TRANSPORT: transport }).quota).toEqual({
      account: 'mailer@smtp.example.org',
      hourlyLimit: 500,
    });
    expect(
      load({
        NEWSLETTER_HOURLY_LIMIT: ' 30 ',
        NEWSLETTER_TRANSPORT: transport,
        NEWSLETTER_QUOTA_ACCOUNT: 'shared-login',
      }).quota,
    ).toEqual({ account: 'shared-login', hourlyLimit: 30 });
  });

  it('reports a bad limit and a stray account with every other problem, at once', () => {
    for (const value of ['0', '-5', '1.5', 'lots', '1e3']) {
      expect(problems({ NEWSLETTER_HOURLY_LIMIT: value }).join('\n')).toContain(
        `NEWSLETTER_HOURLY_LIMIT "${value}" must be a whole number above 0`,
      );
    }
    const all = problems({
      NEWSLETTER_HOURLY_LIMIT: 'many',
      NEWSLETTER_RATE: 'fast',
      NEWSLETTER_LEASE: 'long',
    });
    expect(all).toHaveLength(3);
    expect(problems({ NEWSLETTER_QUOTA_ACCOUNT: 'news@smtp.example.org' })).toEqual([
      'NEWSLETTER_QUOTA_ACCOUNT is set without NEWSLETTER_HOURLY_LIMIT (messages per hour for that account, e.g. 500).',
    ]);
    expect(
      problems({ NEWSLETTER_HOURLY_LIMIT: '10', NEWSLETTER_QUOTA_ACCOUNT: 'a'.repeat(201) }).join('\n'),
    ).toContain('NEWSLETTER_QUOTA_ACCOUNT must be one line');
  });
});
