/**
 * `newsletter doctor`: looks at everything a send depends on and reports each check. Nothing here
 * writes to the database: the store is opened read-only, and SQLite-only checks (integrity) use a
 * separate read-only connection of their own.
 */
import { returnPathCheck } from './return-path.js';
import { readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import { type Config, problemsForRealSend } from '../config.js';
import { describeDatabase } from '../domain/database-location.js';
import { describeTransport, type TransportSpec } from '../domain/transport-spec.js';
import type { Millis, RunInfo } from '../domain/types.js';
import type { Transport } from '../engine/ports.js';
import type { Store } from '../store/store.js';
import type { HostIdentity } from '../host/identity.js';
import { lockLocationOf } from '../host/lock-location.js';
import { inspectRunLock } from '../host/run-lock.js';
import {
  configCheck,
  hostBindingCheck,
  hostsCheck,
  integrityCheck,
  type LockObservation,
  ledgerChecks,
  lockCheck,
  schemaCheck,
} from './checks.js';
import { otherDuplicatesCheck } from './cron-duplicates.js';
import { scanSchedules, sameDatabase } from './cron-sources.js';
import { cronVariablesCheck } from './cron-variables.js';
import { cronChecks } from './crontab.js';
import { growthCheck } from './growth.js';
import { fileSystemCheck } from './mounts.js';
import { sendingTimeCheck } from './sending-time.js';
import { smtpConnectionCheck } from './smtp-connection.js';
import { databasePermissionsCheck, lockFolderProblem } from './permissions.js';
import { type CheckResult, ok, problem, warning } from './types.js';
import { variablesCheck } from './variables.js';

export interface DoctorDeps {
  config: Config;
  /** Read-only, without the schema requirement (doctor reports the schema itself). */
  openStore: () => Promise<Store>;
  host: HostIdentity;
  hostname: string;
  now: () => Millis;
  /** --crontab files; null: the user's crontab, /etc/crontab, /etc/cron.d and systemd units. */
  crontabFiles: string[] | null;
  readMounts: () => Promise<string | null>;
  isProcessAlive: (pid: number) => boolean;
  createTransport: (spec: TransportSpec) => Promise<Transport>;
  /** Bounds the transport check (a server that never answers). */
  transportTimeoutMs: number;
}

export async function runDoctor(deps: DoctorDeps): Promise<CheckResult[]> {
  const { config } = deps;
  const results: CheckResult[] = [];
  const missing = problemsForRealSend(config).filter((p) => !p.startsWith('NEWSLETTER_TRANSPORT'));
  results.push(configCheck(config, missing));
  results.push(variablesCheck(config.unknownVariables));
  results.push(returnPathCheck(config));
  const sqlite = config.database.kind === 'sqlite' ? config.database.path : null;

  let store: Store | null = null;
  try {
    store = await deps.openStore();
    results.push(ok('database', `The database ${describeDatabase(config.database)} is reachable.`));
  } catch (error) {
    results.push(
      problem(
        'database',
        `The database ${describeDatabase(config.database)} cannot be opened: ${messageOf(error)}`,
        detailsOf(error) ?? 'Check NEWSLETTER_DATABASE (or --database); `newsletter init` creates it.',
      ),
    );
  }

  try {
    let schemaOk = false;
    let liveRuns: RunInfo[] = [];
    if (store) {
      const version = await store.schemaVersion();
      results.push(schemaCheck(version));
      schemaOk = version.current === version.latest;
    }
    if (sqlite !== null && store) results.push(await guarded('integrity', () => integrity(sqlite, config)));
    if (sqlite !== null) results.push(fileSystemCheck(await realFile(sqlite), await deps.readMounts()));
    if (sqlite !== null) results.push(databasePermissionsCheck(sqlite));
    if (store && schemaOk) {
      liveRuns = await store.liveRuns();
      if (store.kind === 'sqlite') {
        const bound = await store.getMeta('host_id');
        results.push(...hostBindingCheck(bound, deps.host));
        results.push(hostsCheck(await store.listRuns(100_000), bound));
      } else {
        results.push(
          ok('host', 'PostgreSQL: the database is shared on purpose, and every host may run send-due.'),
        );
      }
    }
    results.push(await guarded('lock', () => lock(deps, liveRuns)));
    results.push(await transportCheck(deps));
    results.push(...(await cron(deps)));
    if (store && schemaOk) {
      const pace = { rate: config.rate, hourlyLimit: config.quota?.hourlyLimit ?? null };
      results.push(sendingTimeCheck(await store.lists(), pace));
      const s = store;
      const stranded = new Map((await s.strandedClaims()).map((c) => [c.newsletterId, c.count]));
      const newsletters = await Promise.all(
        (await s.listNewsletters()).map(async (newsletter) => ({
          newsletter,
          counts: await s.counts(newsletter.id),
          stranded: stranded.get(newsletter.id) ?? 0,
        })),
      );
      results.push(...ledgerChecks(newsletters, liveRuns, deps.now()));
      const walBytes = sqlite === null ? null : await sizeOrNull(`${sqlite}-wal`);
      results.push(...growthCheck(await s.storageFootprint(), walBytes));
    } else if (store) {
      results.push(warning('ledger', 'The ledger was not checked: the schema is not current.'));
    }
  } finally {
    await store?.close().catch(() => undefined);
  }
  return results;
}

async function integrity(file: string, config: Config): Promise<CheckResult> {
  const db = new Database(file, { readonly: true, fileMustExist: true, timeout: config.busyTimeoutMs });
  try {
    const rows = db.pragma('integrity_check') as { integrity_check: string }[];
    return integrityCheck(rows.map((row) => row.integrity_check));
  } finally {
    db.close();
  }
}

async function lock(deps: DoctorDeps, liveRuns: RunInfo[]): Promise<CheckResult> {
  const { config } = deps;
  // The same path send-due locks (see src/cli/commands/send-due.ts).
  const location = lockLocationOf(config.database, config.lockDir);
  if (location.private) {
    const unsafe = lockFolderProblem(location.lockDir);
    if (unsafe) return unsafe;
  }
  const state = await inspectRunLock({ ...location, staleMs: config.lockStaleMs });
  const observation: LockObservation = {
    path: state.path,
    exists: state.mtime !== undefined,
    fresh: state.held,
    refreshedAt: state.mtime?.getTime() ?? null,
    owner: await readOwner(`${state.path}.owner`),
  };
  return lockCheck(observation, liveRuns, {
    now: deps.now(),
    hostname: deps.hostname,
    isProcessAlive: deps.isProcessAlive,
  });
}

async function readOwner(file: string): Promise<LockObservation['owner']> {
  try {
    const owner = JSON.parse(await readFile(file, 'utf8')) as { pid?: unknown; hostname?: unknown };
    if (typeof owner.pid !== 'number' || typeof owner.hostname !== 'string') return null;
    return { pid: owner.pid, hostname: owner.hostname, since: (await stat(file)).mtimeMs };
  } catch {
    return null;
  }
}

async function transportCheck(deps: DoctorDeps): Promise<CheckResult> {
  const spec = deps.config.transport;
  if (!spec) {
    return problem(
      'transport',
      'NEWSLETTER_TRANSPORT is not set: send-due refuses to send (it never falls back to anything).',
      'Set it to smtp://user:pass@host:587, smtps://…, sendmail, or file:./outbox.',
    );
  }
  const shown = describeTransport(spec);
  let transport: Transport | null = null;
  let timer: NodeJS.Timeout | undefined;
  try {
    transport = await deps.createTransport(spec);
    // SMTP also says what it saw of the encryption.
    const verified = transport.inspect ? transport.inspect() : transport.verify();
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no answer within ${Math.round(deps.transportTimeoutMs / 1000)} s`)),
        deps.transportTimeoutMs,
      );
    });
    const seen = await Promise.race([verified, timeout]);
    if (spec.kind === 'smtp' && seen) return smtpConnectionCheck(spec, shown, seen, deps.now());
    if (spec.kind === 'sendmail') return ok('transport', `${shown}: the program exists and is executable.`);
    if (spec.kind === 'file') return ok('transport', `${shown}: the outbox folder is writable.`);
    return ok('transport', `${shown}: connected; no mail was sent.`);
  } catch (error) {
    const kind = (error as { outcome?: { kind?: string } }).outcome?.kind;
    const fix =
      spec.kind === 'sendmail'
        ? `Install a mail transfer agent that provides ${spec.path} (e.g. \`apt-get install postfix\`), or use smtp://.`
        : spec.kind === 'file'
          ? `Create ${spec.dir} and make it writable by this user.`
          : kind === 'fatal'
            ? 'Check the host, user name and password in NEWSLETTER_TRANSPORT, the TLS settings (NEWSLETTER_SMTP_TLS, NEWSLETTER_SMTP_CA), and that the server allows this sender.'
            : `Check that ${spec.host}:${spec.port} is up and reachable from this host (a firewall, a wrong port?); send-due exits 9 and retries meanwhile.`;
    return problem('transport', `${shown}: the check failed: ${messageOf(error)}`, fix);
  } finally {
    clearTimeout(timer);
    await transport?.close().catch(() => undefined);
  }
}

async function cron(deps: DoctorDeps): Promise<CheckResult[]> {
  const scan = await scanSchedules(deps.crontabFiles);
  const database =
    deps.config.database.kind === 'sqlite' ? deps.config.database.path : deps.config.database.url;
  const results = [
    ...cronChecks(scan.commands, database, scan.sources, sameDatabase),
    ...otherDuplicatesCheck(scan.commands, database, sameDatabase),
    ...cronVariablesCheck(scan.unknownVariables, deps.config.unknownVariables),
  ];
  if (scan.unreadable.length > 0) {
    results.unshift(
      warning('cron-files', `Could not read ${scan.unreadable.join(', ')}.`, 'Check the --crontab paths.'),
    );
  }
  return results;
}

async function guarded(name: string, check: () => Promise<CheckResult>): Promise<CheckResult> {
  try {
    return await check();
  } catch (error) {
    return problem(name, `The ${name} check failed: ${messageOf(error)}`);
  }
}

/** Symlinks resolved (a link into a network mount is on that mount), even before the file exists. */
async function realFile(file: string): Promise<string> {
  try {
    return await realpath(file);
  } catch {
    try {
      return path.join(await realpath(path.dirname(file)), path.basename(file));
    } catch {
      return file;
    }
  }
}

/** A file's size; null when it is not there (a WAL exists only while a connection is open). */
async function sizeOrNull(file: string): Promise<number | null> {
  return stat(file).then(
    (found) => found.size,
    () => null,
  );
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function detailsOf(error: unknown): string | undefined {
  const details = (error as { details?: unknown }).details;
  return Array.isArray(details) && details.length > 0 ? details.join(' ') : undefined;
}
