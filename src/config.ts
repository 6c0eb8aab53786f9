/**
 * Configuration: `.env` (or --env-file), then the environment, then flags (the rule, shared with
 * doctor: src/domain/setting-precedence.ts). Every problem is collected and reported at once,
 * before any work, each saying what to do.
 * Secrets (SMTP password, token secrets, DKIM key, database password) stay in this object and are
 * never printed: `redactor()` masks them in anything that might be shown.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import {
  type ConfigVariable,
  describeUnknownVariable,
  type UnknownVariable,
  unknownVariables,
} from './config-variables.js';
import { DEFAULT_DATABASE, type DatabaseTarget, isPostgresUrl } from './domain/database-location.js';
import { ConfigError } from './domain/errors.js';
import { parseDuration, parseDurationList } from './domain/duration.js';
import { fromAddressProblem } from './domain/from-address.js';
import { defaultQuotaAccount } from './domain/quota.js';
import { maskSecrets, secretForms } from './domain/secret-forms.js';
import { settingOf } from './domain/setting-precedence.js';
import { parseReturnPath, type ReturnPathSetting } from './domain/return-path.js';
import { parseTransport, type TransportSpec } from './domain/transport-spec.js';
import { parseWhen } from './domain/when.js';
import { type DkimConfig, dkimConfig } from './dkim-config.js';
export type { DkimConfig } from './dkim-config.js';
import { type ImapConfig, imapConfig } from './imap-config.js';
import { type SmtpTlsConfig, smtpTlsConfig } from './smtp-tls-config.js';

/** One setting by name (src/config-variables.ts lists them), or null when unset. */
export type ReadSetting = (key: ConfigVariable) => string | null;

// dotenv is loaded only when there is an env file to read (CommonJS, hence require).
const require = createRequire(import.meta.url);

// dotenv and node:crypto are loaded when needed, not at start: the every-minute idle cron run
// (src/cli/idle.ts) reads no .env file, checks no DKIM key and hashes nothing.

/** NEWSLETTER_HOURLY_LIMIT: the sending account's quota, counted in the database by every host. */
export interface QuotaConfig {
  /** NEWSLETTER_QUOTA_ACCOUNT, or the SMTP user@host of the transport (never a password). */
  account: string;
  /** Messages per clock hour, for all runs on all hosts together. */
  hourlyLimit: number;
}

export interface Config {
  database: DatabaseTarget;
  transport: TransportSpec | null;
  from: string | null;
  /** NEWSLETTER_REPLY_TO: a Reply-To header on every message, when set. */
  replyTo: string | null;
  baseUrl: string | null;
  secret: string | null;
  /**
   * The token key before the last rotation: still accepted when checking a token (never used to
   * sign one) until `secretPreviousUntil`, or for as long as it is set when that is null.
   */
  secretPrevious: string | null;
  secretPreviousUntil: number | null;
  dkim: DkimConfig | null;
  /** Soft bounces (4.x.x, delayed) of one address before `bounces import` suppresses it. */
  softBounceLimit: number;
  /**
   * NEWSLETTER_RETURN_PATH and NEWSLETTER_RETURN_PATH_DELIMITER: the VERP envelope sender
   * (src/domain/return-path.ts). `address` null: the From address carries the token.
   */
  returnPath: ReturnPathSetting;
  /** Messages per second, for the whole run. */
  rate: number;
  /** Null: no hourly quota. */
  quota: QuotaConfig | null;
  /** Delays between attempts after a 4xx; after the last one the delivery fails. */
  retryAfter: number[];
  /** How long a run's claims last without renewal. */
  leaseMs: number;
  hostIdOverride: string | null;
  /** Where the run lock lives; beside the database by default. */
  lockDir: string | null;
  /** When a run lock whose owner cannot be checked counts as abandoned. */
  lockStaleMs: number;
  /**
   * NEWSLETTER_BATCH: recipients claimed per transaction, half the most that can end `unknown`
   * after a crash; null when unset: sized by the rate a run reaches (src/engine/batch-size.ts).
   */
  batchSize: number | null;
  /** SMTP connections kept open at once. */
  connections: number;
  smtpTimeoutMs: number;
  /** NEWSLETTER_SMTP_TLS and NEWSLETTER_SMTP_CA (src/smtp-tls-config.ts). */
  smtpTls: SmtpTlsConfig;
  /** NEWSLETTER_IMAP and its folders, for `bounces fetch` (src/imap-config.ts); null when unset. */
  imap: ImapConfig | null;
  /** How long SQLite waits for another writer before giving up. */
  busyTimeoutMs: number;
  /** Where the .env values came from, for doctor. */
  envFile: string | null;
  /**
   * NEWSLETTER_* names set but not read (misspellings, most likely): every command warns about
   * them on stderr and doctor reports them; they never stop a command.
   */
  unknownVariables: UnknownVariable[];
}

export interface LoadConfigOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** --env-file: must exist. Without it, `.env` in cwd is read when present. */
  envFile?: string | null | undefined;
  /** Flags that override both. */
  overrides?: { database?: string | undefined };
}

const DEFAULTS = {
  database: DEFAULT_DATABASE,
  rate: 10,
  retryAfter: '1m,5m,30m,2h,6h',
  lease: '60s',
  connections: 3,
  smtpTimeout: '60s',
  busyTimeout: '5s',
  lockStale: '2m',
  softBounceLimit: 3,
};

/** Folded header lines, NUL and the Unicode line separators: never allowed in a header value. */
const HEADER_BREAK = /[\r\n\0\u2028\u2029]/;

export function loadConfig(options: LoadConfigOptions): Config {
  const problems: string[] = [];
  // Read even when every setting comes from elsewhere: a missing --env-file is still a problem.
  const fileValues = readEnvFile(options, problems);
  const sources = {
    envFile: () => fileValues,
    environment: options.env,
    flags: { NEWSLETTER_DATABASE: options.overrides?.database },
  };
  const get: ReadSetting = (key) => settingOf(sources, key);
  const unknown = unknownVariables({
    environment: options.env,
    envFile: fileValues === null ? null : { path: envFilePath(options), values: fileValues },
  });

  const database = parseDatabase(get('NEWSLETTER_DATABASE') ?? DEFAULTS.database, options.cwd, problems);

  let transport: TransportSpec | null = null;
  const transportValue = get('NEWSLETTER_TRANSPORT');
  if (transportValue) {
    const parsed = parseTransport(transportValue);
    if ('error' in parsed) problems.push(`NEWSLETTER_TRANSPORT ${parsed.error}.`);
    else
      transport = parsed.kind === 'file' ? { ...parsed, dir: path.resolve(options.cwd, parsed.dir) } : parsed;
  }

  const from = get('NEWSLETTER_FROM');
  if (from && HEADER_BREAK.test(from)) {
    problems.push(
      'NEWSLETTER_FROM contains a line break; it must be one line, e.g. "News <news@example.org>".',
    );
  } else if (from) {
    const problem = fromAddressProblem('NEWSLETTER_FROM', from);
    if (problem) problems.push(problem);
  }

  const replyTo = get('NEWSLETTER_REPLY_TO');
  if (replyTo && HEADER_BREAK.test(replyTo)) {
    problems.push(
      'NEWSLETTER_REPLY_TO contains a line break; it must be one line, e.g. "Ada <ada@example.org>".',
    );
  } else if (replyTo) {
    const problem = fromAddressProblem('NEWSLETTER_REPLY_TO', replyTo);
    if (problem) problems.push(problem);
  }

  const baseUrl = get('NEWSLETTER_BASE_URL');
  if (baseUrl && !isHttpUrl(baseUrl)) {
    problems.push(
      `NEWSLETTER_BASE_URL "${baseUrl}" is not an http(s) URL; use e.g. https://example.org/newsletter.`,
    );
  }

  const secret = get('NEWSLETTER_SECRET');
  if (secret && secret.length < 16) {
    problems.push(
      'NEWSLETTER_SECRET is shorter than 16 characters; generate one with `openssl rand -hex 32`.',
    );
  }
  const rotation = previousSecret(get, secret, problems);
  const returnPath = parseReturnPath(
    get('NEWSLETTER_RETURN_PATH'),
    get('NEWSLETTER_RETURN_PATH_DELIMITER'),
    problems,
  );
  const dkim = dkimConfig(get, options.cwd, problems);
  const softBounceLimit = positiveInteger(
    get('NEWSLETTER_SOFT_BOUNCE_LIMIT'),
    DEFAULTS.softBounceLimit,
    'NEWSLETTER_SOFT_BOUNCE_LIMIT',
    problems,
  );

  const rate = positiveNumber(
    get('NEWSLETTER_RATE'),
    DEFAULTS.rate,
    'NEWSLETTER_RATE',
    'messages per second, e.g. 10',
    problems,
  );
  const retryValue = get('NEWSLETTER_RETRY_AFTER') ?? DEFAULTS.retryAfter;
  const retryAfter = parseDurationList(retryValue);
  if (!retryAfter) {
    problems.push(
      `NEWSLETTER_RETRY_AFTER "${retryValue}" is not a list of durations; use e.g. 1m,5m,30m,2h.`,
    );
  }
  const leaseMs = duration(get('NEWSLETTER_LEASE') ?? DEFAULTS.lease, 'NEWSLETTER_LEASE', problems);
  if (leaseMs !== null && leaseMs < 1000) problems.push('NEWSLETTER_LEASE must be at least 1s.');
  const smtpTimeoutMs = duration(
    get('NEWSLETTER_SMTP_TIMEOUT') ?? DEFAULTS.smtpTimeout,
    'NEWSLETTER_SMTP_TIMEOUT',
    problems,
  );
  const busyTimeoutMs = duration(
    get('NEWSLETTER_BUSY_TIMEOUT') ?? DEFAULTS.busyTimeout,
    'NEWSLETTER_BUSY_TIMEOUT',
    problems,
  );
  const batchValue = get('NEWSLETTER_BATCH');
  const batchSize = batchValue === null ? null : positiveInteger(batchValue, 1, 'NEWSLETTER_BATCH', problems);
  const connections = positiveInteger(
    get('NEWSLETTER_SMTP_CONNECTIONS'),
    DEFAULTS.connections,
    'NEWSLETTER_SMTP_CONNECTIONS',
    problems,
  );
  const lockDirValue = get('NEWSLETTER_LOCK_DIR');
  const lockStaleMs = duration(
    get('NEWSLETTER_LOCK_STALE') ?? DEFAULTS.lockStale,
    'NEWSLETTER_LOCK_STALE',
    problems,
  );
  if (lockStaleMs !== null && lockStaleMs < 2000) problems.push('NEWSLETTER_LOCK_STALE must be at least 2s.');
  const quota = quotaConfig(get, transport, problems);
  const smtpTls = smtpTlsConfig(get, options.cwd, transport, problems);
  const imap = imapConfig(get, options.cwd, problems);

  if (problems.length > 0) {
    throw new ConfigError(
      `The configuration has ${problems.length === 1 ? 'a problem' : `${problems.length} problems`}:`,
      // A misspelt name is often why a setting is missing: said with the problems it may explain.
      [...problems, ...unknown.map(describeUnknownVariable)],
    );
  }
  return {
    database: database as DatabaseTarget,
    transport,
    from,
    replyTo,
    baseUrl,
    secret,
    secretPrevious: rotation.secret,
    secretPreviousUntil: rotation.until,
    dkim,
    softBounceLimit,
    returnPath,
    rate,
    quota,
    retryAfter: retryAfter as number[],
    leaseMs: leaseMs as number,
    hostIdOverride: get('NEWSLETTER_HOST_ID'),
    lockDir: lockDirValue ? path.resolve(options.cwd, lockDirValue) : null,
    lockStaleMs: lockStaleMs as number,
    batchSize,
    connections,
    smtpTimeoutMs: smtpTimeoutMs as number,
    smtpTls,
    imap,
    busyTimeoutMs: busyTimeoutMs as number,
    envFile: fileValues === null ? null : envFilePath(options),
    unknownVariables: unknown,
  };
}

/** What a real send needs beyond a valid configuration; every missing piece at once. */
export function problemsForRealSend(config: Config): string[] {
  const problems: string[] = [];
  if (!config.transport) {
    problems.push(
      'NEWSLETTER_TRANSPORT is not set: real sends never fall back to anything. Set smtp://user:pass@host:587, sendmail, or file:./outbox.',
    );
  }
  if (!config.secret) {
    problems.push(
      'NEWSLETTER_SECRET is not set: it signs unsubscribe links. Generate one with `openssl rand -hex 32`.',
    );
  }
  if (!config.baseUrl) {
    problems.push(
      'NEWSLETTER_BASE_URL is not set: unsubscribe links need it, e.g. https://example.org/newsletter.',
    );
  }
  return problems;
}

/**
 * The keys an unsubscribe token may have been signed with at `now`: the current one first, then
 * the previous one while it is still accepted. Empty without NEWSLETTER_SECRET.
 */
export function unsubscribeKeys(config: Config, now: number): string[] {
  if (!config.secret) return [];
  const previousValid =
    config.secretPrevious !== null &&
    (config.secretPreviousUntil === null || now < config.secretPreviousUntil);
  return previousValid ? [config.secret, config.secretPrevious as string] : [config.secret];
}

/**
 * Masks every secret of the configuration, in every encoding it can take (src/domain/secret-forms.ts),
 * in a text that may be shown or stored.
 */
export function redactor(config: Config): (text: string) => string {
  const forms: string[] = [];
  const add = (secret: string | null, asWritten: readonly string[] = []): void => {
    if (secret && secret.length >= 3) forms.push(...secretForms(secret, asWritten));
  };
  add(config.secret);
  add(config.secretPrevious);
  if (config.transport?.kind === 'smtp') add(config.transport.password);
  if (config.imap) add(config.imap.password, [config.imap.passwordAsWritten]);
  for (const piece of config.dkim ? pemSecrets(config.dkim.privateKey) : []) add(piece);
  if (config.database.kind === 'postgres') {
    try {
      const written = new URL(config.database.url).password;
      add(safeDecode(written) ?? written, [written]);
    } catch {
      // an unparseable URL was already reported
    }
  }
  const ordered = [...new Set(forms)].sort((a, b) => b.length - a.length);
  return (text) => maskSecrets(text, ordered);
}

/** A URL's percent-encoded part, decoded; null when it is not valid percent-encoding. */
function safeDecode(value: string): string | null {
  try {
    return decodeURIComponent(value);
  } catch {
    return null;
  }
}

/**
 * The key whole, and each line of its base64 body: a log line or an error could hold a piece of
 * it without the armour, and the whole PEM would then not match.
 */
function pemSecrets(pem: string): string[] {
  const lines = pem
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line.length >= 16 && !line.startsWith('-----'));
  return [pem.trim(), ...lines];
}

/** The most a quota account name may be: it is a key in the database and shown in messages. */
const QUOTA_ACCOUNT_MAX = 200;

function quotaConfig(
  get: ReadSetting,
  transport: TransportSpec | null,
  problems: string[],
): QuotaConfig | null {
  const limitValue = get('NEWSLETTER_HOURLY_LIMIT');
  const accountValue = get('NEWSLETTER_QUOTA_ACCOUNT');
  if (limitValue === null) {
    if (accountValue !== null) {
      problems.push(
        'NEWSLETTER_QUOTA_ACCOUNT is set without NEWSLETTER_HOURLY_LIMIT (messages per hour for that account, e.g. 500).',
      );
    }
    return null;
  }
  const before = problems.length;
  const hourlyLimit = Number(limitValue);
  if (!/^\d+$/.test(limitValue) || !Number.isSafeInteger(hourlyLimit) || hourlyLimit <= 0) {
    problems.push(
      `NEWSLETTER_HOURLY_LIMIT "${limitValue}" must be a whole number above 0 (messages per clock hour, e.g. 500); unset it for no quota.`,
    );
  }
  if (accountValue !== null && (accountValue.length > QUOTA_ACCOUNT_MAX || /\p{Cc}/u.test(accountValue))) {
    problems.push(
      `NEWSLETTER_QUOTA_ACCOUNT must be one line of at most ${QUOTA_ACCOUNT_MAX} characters, e.g. news@smtp.example.org.`,
    );
  }
  if (problems.length > before) return null;
  // Without a transport real sends refuse (problemsForRealSend) and nothing is counted.
  const account = accountValue ?? (transport ? defaultQuotaAccount(transport) : 'no transport');
  return { account, hourlyLimit };
}

function previousSecret(
  get: ReadSetting,
  secret: string | null,
  problems: string[],
): { secret: string | null; until: number | null } {
  const previous = get('NEWSLETTER_SECRET_PREVIOUS');
  const untilValue = get('NEWSLETTER_SECRET_PREVIOUS_UNTIL');
  let until: number | null = null;
  if (untilValue !== null) {
    // A date, not `now` or `+2d`: a relative time would move with every run and never arrive.
    until = /^(now|\+|in\s)/i.test(untilValue) ? null : parseWhen(untilValue, Date.now());
    if (until === null) {
      problems.push(
        `NEWSLETTER_SECRET_PREVIOUS_UNTIL "${untilValue}" is not a date; use e.g. 2026-12-31 or 2026-12-31T12:00Z.`,
      );
    }
    if (previous === null) {
      problems.push('NEWSLETTER_SECRET_PREVIOUS_UNTIL is set without NEWSLETTER_SECRET_PREVIOUS; remove it.');
    }
  }
  if (previous !== null) {
    if (!secret) {
      problems.push(
        'NEWSLETTER_SECRET_PREVIOUS is set without NEWSLETTER_SECRET: after a rotation the new key goes in NEWSLETTER_SECRET.',
      );
    } else if (previous === secret) {
      problems.push(
        'NEWSLETTER_SECRET_PREVIOUS is the same as NEWSLETTER_SECRET; set it to the key it replaced.',
      );
    }
    if (previous.length < 16) problems.push('NEWSLETTER_SECRET_PREVIOUS is shorter than 16 characters.');
  }
  return { secret: previous, until };
}

function envFilePath(options: LoadConfigOptions): string {
  return path.resolve(options.cwd, options.envFile ?? '.env');
}

function readEnvFile(options: LoadConfigOptions, problems: string[]): Record<string, string> | null {
  const file = envFilePath(options);
  if (!options.envFile && !existsSync(file)) return null;
  try {
    return (require('dotenv') as typeof import('dotenv')).parse(readFileSync(file));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    problems.push(
      code === 'ENOENT'
        ? `--env-file ${file} does not exist; check the path in your crontab line.`
        : `Cannot read ${file} (${code ?? (error as Error).message}); check its permissions.`,
    );
    return null;
  }
}

function parseDatabase(value: string, cwd: string, problems: string[]): DatabaseTarget | null {
  if (isPostgresUrl(value)) {
    try {
      const url = new URL(value);
      // pg would pass a malformed `%` on as it is: a password that can never match, found only at
      // the first connection. Said here, naming the variable and never the value.
      if (safeDecode(url.username) === null || safeDecode(url.password) === null) {
        problems.push(
          'NEWSLETTER_DATABASE has a user name or password that is not valid percent-encoding: write a literal % as %25 (and @ as %40, : as %3A, / as %2F).',
        );
        return null;
      }
      return { kind: 'postgres', url: value };
    } catch {
      problems.push('NEWSLETTER_DATABASE is not a valid postgres:// URL.');
      return null;
    }
  }
  if (/^[a-z]+:\/\//i.test(value)) {
    // A URL's user:password must not reach the error text (or cron's mail).
    const shown = value.replace(/^([a-z]+:\/\/).*@/i, '$1***@');
    problems.push(`NEWSLETTER_DATABASE "${shown}" is neither a file path nor a postgres:// URL.`);
    return null;
  }
  return { kind: 'sqlite', path: path.resolve(cwd, value) };
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === 'https:' || url.protocol === 'http:';
  } catch {
    return false;
  }
}

function duration(value: string, name: string, problems: string[]): number | null {
  const ms = parseDuration(value);
  if (ms === null) problems.push(`${name} "${value}" is not a duration; use e.g. 30s, 5m or 2h.`);
  return ms;
}

function positiveNumber(
  value: string | null,
  fallback: number,
  name: string,
  hint: string,
  problems: string[],
): number {
  if (value === null) return fallback;
  const number = Number(value);
  if (!Number.isFinite(number) || number <= 0) {
    problems.push(`${name} "${value}" must be a positive number (${hint}).`);
    return fallback;
  }
  return number;
}

function positiveInteger(value: string | null, fallback: number, name: string, problems: string[]): number {
  if (value === null) return fallback;
  const number = Number(value);
  if (!Number.isInteger(number) || number <= 0) {
    problems.push(`${name} "${value}" must be a whole number above 0.`);
    return fallback;
  }
  return number;
}
