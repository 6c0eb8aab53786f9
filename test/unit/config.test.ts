import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Config, loadConfig, problemsForRealSend, redactor } from '../../src/config.js';
import { ConfigError } from '../../src/domain/errors.js';
import { ExitCode } from '../../src/domain/exit-codes.js';

let cwd: string;
let bare: string;

beforeAll(() => {
  cwd = mkdtempSync(path.join(tmpdir(), 'newsletter-config-'));
  bare = mkdtempSync(path.join(tmpdir(), 'newsletter-config-bare-'));
});

afterAll(() => {
  rmSync(cwd, { recursive: true, force: true });
  rmSync(bare, { recursive: true, force: true });
});

/** Loads from a folder with no .env, with only the given environment. */
function load(
  env: Record<string, string>,
  options: { cwd?: string; envFile?: string; database?: string } = {},
) {
  return loadConfig({
    cwd: options.cwd ?? bare,
    env,
    envFile: options.envFile ?? null,
    overrides: { database: options.database },
  });
}

function problemsOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

const allText = (error: ConfigError) => [error.message, ...error.details].join('\n');

describe('loadConfig: defaults', () => {
  it('works with nothing set, with safe defaults and no transport', () => {
    const config = load({});
    expect(config.database).toEqual({ kind: 'sqlite', path: path.join(bare, 'newsletter.db') });
    expect(config.transport).toBeNull();
    expect(config.from).toBeNull();
    expect(config.secret).toBeNull();
    expect(config.rate).toBeGreaterThan(0);
    expect(config.retryAfter.length).toBeGreaterThan(1);
    expect([...config.retryAfter].sort((a, b) => a - b)).toEqual(config.retryAfter);
    expect(config.leaseMs).toBeGreaterThanOrEqual(1000);
    expect(config.envFile).toBeNull();
  });

  it('ignores variables outside NEWSLETTER_ and treats blank values as unset', () => {
    const config = load({ DATABASE: '/elsewhere.db', NEWSLETTER_FROM: '   ', NEWSLETTER_RATE: '' });
    expect(config.database).toEqual({ kind: 'sqlite', path: path.join(bare, 'newsletter.db') });
    expect(config.from).toBeNull();
    expect(config.rate).toBe(load({}).rate);
  });
});

describe('loadConfig: every problem at once', () => {
  it('reports each bad variable in one ConfigError (exit code 3)', () => {
    const error = problemsOf(() =>
      load({
        NEWSLETTER_DATABASE: 'mysql://db.example.org/news',
        NEWSLETTER_TRANSPORT: 'ftp://mail.example.org',
        NEWSLETTER_FROM: 'no address here',
        NEWSLETTER_BASE_URL: 'news.example.org',
        NEWSLETTER_SECRET: 'too-short',
        NEWSLETTER_RATE: '-3',
        NEWSLETTER_RETRY_AFTER: '1m,soon',
        NEWSLETTER_LEASE: '500ms',
        NEWSLETTER_SMTP_TIMEOUT: 'forever',
        NEWSLETTER_BUSY_TIMEOUT: '5 minutes',
        NEWSLETTER_BATCH: '2.5',
        NEWSLETTER_SMTP_CONNECTIONS: '0',
        NEWSLETTER_LOCK_STALE: '1s',
      }),
    );
    expect(error.exitCode).toBe(ExitCode.config);
    expect(error.message).toBe('The configuration has 13 problems:');
    const names = [
      'NEWSLETTER_DATABASE',
      'NEWSLETTER_TRANSPORT',
      'NEWSLETTER_FROM',
      'NEWSLETTER_BASE_URL',
      'NEWSLETTER_SECRET',
      'NEWSLETTER_RATE',
      'NEWSLETTER_RETRY_AFTER',
      'NEWSLETTER_LEASE',
      'NEWSLETTER_SMTP_TIMEOUT',
      'NEWSLETTER_BUSY_TIMEOUT',
      'NEWSLETTER_BATCH',
      'NEWSLETTER_SMTP_CONNECTIONS',
      'NEWSLETTER_LOCK_STALE',
    ];
    expect(error.details).toHaveLength(names.length);
    for (const name of names)
      expect(
        error.details.some((d) => d.startsWith(name)),
        name,
      ).toBe(true);
  });

  it('says one problem in the singular', () => {
    expect(problemsOf(() => load({ NEWSLETTER_RATE: 'fast' })).message).toBe(
      'The configuration has a problem:',
    );
  });

  it('refuses a From with a line break (header injection)', () => {
    const error = problemsOf(() =>
      load({ NEWSLETTER_FROM: 'News <news@example.org>\r\nBcc: all@example.org' }),
    );
    expect(error.details).toEqual([expect.stringContaining('NEWSLETTER_FROM contains a line break')]);
  });
});

describe('loadConfig: .env, then the environment, then flags', () => {
  it('reads ./.env, lets the environment override it, and the --database flag override both', () => {
    writeFileSync(
      path.join(cwd, '.env'),
      'NEWSLETTER_RATE=5\nNEWSLETTER_FROM=File <file@example.org>\nNEWSLETTER_DATABASE=from-file.db\nNEWSLETTER_LEASE=90s\n',
    );
    const fileOnly = load({}, { cwd });
    expect(fileOnly).toMatchObject({
      rate: 5,
      from: 'File <file@example.org>',
      database: { kind: 'sqlite', path: path.join(cwd, 'from-file.db') },
      leaseMs: 90_000,
      envFile: path.join(cwd, '.env'),
    });

    const withEnv = load({ NEWSLETTER_RATE: '7', NEWSLETTER_DATABASE: 'from-env.db' }, { cwd });
    expect(withEnv.rate).toBe(7);
    expect(withEnv.from).toBe('File <file@example.org>');
    expect(withEnv.database).toEqual({ kind: 'sqlite', path: path.join(cwd, 'from-env.db') });

    const withFlag = load({ NEWSLETTER_DATABASE: 'from-env.db' }, { cwd, database: 'from-flag.db' });
    expect(withFlag.database).toEqual({ kind: 'sqlite', path: path.join(cwd, 'from-flag.db') });
  });

  it('--env-file replaces ./.env', () => {
    const site = path.join(cwd, 'site-a.env');
    writeFileSync(site, 'NEWSLETTER_RATE=3\n');
    const config = load({}, { cwd, envFile: site });
    expect(config.rate).toBe(3);
    // ./.env (rate 5, a From) is not read at all.
    expect(config.from).toBeNull();
    expect(config.envFile).toBe(site);
  });

  it('a relative --env-file resolves against the working folder', () => {
    writeFileSync(path.join(cwd, 'site-b.env'), 'NEWSLETTER_RATE=2\n');
    expect(load({}, { cwd, envFile: 'site-b.env' }).rate).toBe(2);
  });

  it('a missing --env-file is a configuration problem that names the path', () => {
    const missing = path.join(cwd, 'nowhere.env');
    const error = problemsOf(() => load({}, { cwd, envFile: missing }));
    expect(error.details).toEqual([
      `--env-file ${missing} does not exist; check the path in your crontab line.`,
    ]);
  });

  it('problems from the env file and the environment are reported together', () => {
    const site = path.join(cwd, 'site-c.env');
    writeFileSync(site, 'NEWSLETTER_LEASE=forever\n');
    const error = problemsOf(() => load({ NEWSLETTER_RATE: 'fast' }, { cwd, envFile: site }));
    expect(error.details).toHaveLength(2);
    expect(allText(error)).toContain('NEWSLETTER_LEASE "forever"');
    expect(allText(error)).toContain('NEWSLETTER_RATE "fast"');
  });
});

describe('loadConfig: secrets never appear in error text', () => {
  it('not the token secret, the SMTP password or a database password', () => {
    const error = problemsOf(() =>
      load({
        NEWSLETTER_SECRET: 'short-secret',
        NEWSLETTER_TRANSPORT: 'smtp://mailer:hunter2-password@mail.example.org:587',
        NEWSLETTER_DATABASE: 'mysql://app:db-password-42@db.example.org/news',
        NEWSLETTER_RATE: 'fast',
      }),
    );
    const text = allText(error);
    expect(text).toContain('NEWSLETTER_SECRET is shorter than 16 characters');
    expect(text).toContain('NEWSLETTER_DATABASE "mysql://***@db.example.org/news"');
    for (const secret of ['short-secret', 'hunter2-password', 'db-password-42']) {
      expect(text).not.toContain(secret);
    }
  });

  it('not a password in a transport URL that does not parse', () => {
    const error = problemsOf(() =>
      load({ NEWSLETTER_TRANSPORT: 'smtp://mailer:hunter2-password@mail.example.org:99999' }),
    );
    expect(allText(error)).toContain('NEWSLETTER_TRANSPORT');
    expect(allText(error)).not.toContain('hunter2-password');
  });

  it('redactor() masks the token secret, the SMTP password and a postgres password', () => {
    const config = load({
      NEWSLETTER_SECRET: 'a-very-long-token-secret-123456',
      NEWSLETTER_TRANSPORT: 'smtp://mailer:hunter2-password@mail.example.org:587',
      NEWSLETTER_DATABASE: 'postgres://app:pg-pass-77@db.example.org/news',
    });
    const redact = redactor(config);
    expect(
      redact('secret a-very-long-token-secret-123456, smtp hunter2-password, pg pg-pass-77, user mailer'),
    ).toBe('secret ***, smtp ***, pg ***, user mailer');
  });
});

describe('loadConfig: durations', () => {
  it('reads ms, s, m, h and d', () => {
    const config = load({
      NEWSLETTER_LEASE: '90s',
      NEWSLETTER_SMTP_TIMEOUT: '2m',
      NEWSLETTER_BUSY_TIMEOUT: '1500ms',
      NEWSLETTER_LOCK_STALE: '1h',
      NEWSLETTER_RETRY_AFTER: '30s, 5m,2h,1d',
    });
    expect(config).toMatchObject({
      leaseMs: 90_000,
      smtpTimeoutMs: 120_000,
      busyTimeoutMs: 1500,
      lockStaleMs: 3_600_000,
      retryAfter: [30_000, 300_000, 7_200_000, 86_400_000],
    });
  });

  it('accepts a zero retry delay (tests, or a server that only greylists briefly)', () => {
    expect(load({ NEWSLETTER_RETRY_AFTER: '0s' }).retryAfter).toEqual([0]);
  });

  it('refuses durations without a unit, with an empty step, or too short for a lease', () => {
    for (const [name, value] of [
      ['NEWSLETTER_LEASE', '60'],
      ['NEWSLETTER_RETRY_AFTER', '1m,,5m'],
      ['NEWSLETTER_RETRY_AFTER', '1m;5m'],
      ['NEWSLETTER_LEASE', '999ms'],
      ['NEWSLETTER_BUSY_TIMEOUT', '-1s'],
    ] as const) {
      const error = problemsOf(() => load({ [name]: value }));
      expect(error.details, `${name}=${value}`).toEqual([expect.stringContaining(name)]);
    }
  });
});

describe('loadConfig: NEWSLETTER_TRANSPORT forms', () => {
  const transport = (value: string, cwdFor = bare): Config['transport'] =>
    load({ NEWSLETTER_TRANSPORT: value }, { cwd: cwdFor }).transport;

  it('smtp:// with credentials, port and percent-encoding', () => {
    expect(transport('smtp://news%40example.org:p%40ss@mail.example.org:2525')).toEqual({
      kind: 'smtp',
      secure: false,
      host: 'mail.example.org',
      port: 2525,
      user: 'news@example.org',
      password: 'p@ss',
    });
  });

  it('smtps:// defaults to port 465, smtp:// to 587', () => {
    expect(transport('smtps://mail.example.org')).toMatchObject({ secure: true, port: 465, user: null });
    expect(transport('smtp://mail.example.org')).toMatchObject({ secure: false, port: 587 });
  });

  it('sendmail, with or without a path', () => {
    expect(transport('sendmail')).toEqual({ kind: 'sendmail', path: '/usr/sbin/sendmail' });
    expect(transport('sendmail:/opt/bin/sendmail')).toEqual({ kind: 'sendmail', path: '/opt/bin/sendmail' });
  });

  it('file: resolves a relative outbox against the working folder', () => {
    expect(transport('file:./outbox', cwd)).toEqual({ kind: 'file', dir: path.join(cwd, 'outbox') });
    expect(transport('file:///var/spool/news')).toEqual({ kind: 'file', dir: '/var/spool/news' });
  });

  it('anything else is a problem naming the forms it takes', () => {
    const error = problemsOf(() => load({ NEWSLETTER_TRANSPORT: 'mailgun' }));
    expect(error.details).toEqual([
      'NEWSLETTER_TRANSPORT must be smtp://…, smtps://…, sendmail or file:./outbox.',
    ]);
  });
});

describe('problemsForRealSend', () => {
  it('lists every missing piece at once', () => {
    const problems = problemsForRealSend(load({}));
    expect(problems).toHaveLength(3);
    expect(problems[0]).toContain('NEWSLETTER_TRANSPORT is not set');
    expect(problems[1]).toContain('NEWSLETTER_SECRET is not set');
    expect(problems[2]).toContain('NEWSLETTER_BASE_URL is not set');
  });

  it('is empty when transport, secret and base URL are set', () => {
    const config = load({
      NEWSLETTER_TRANSPORT: 'file:./outbox',
      NEWSLETTER_SECRET: '0123456789abcdef0123',
      NEWSLETTER_BASE_URL: 'https://news.example.org',
    });
    expect(problemsForRealSend(config)).toEqual([]);
  });
});
