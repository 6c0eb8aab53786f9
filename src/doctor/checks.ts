/**
 * The checks of `newsletter doctor`, each a small function from what was observed to a result.
 * The orchestrator (run.ts) does the looking; these decide how bad it is and what to say.
 */
import type { Config } from '../config.js';
import type { DeliveryCounts, Millis, Newsletter, RunInfo } from '../domain/types.js';
import { findUnsettled, type Unsettled, type UnsettledKind } from '../domain/unsettled.js';
import { type CheckResult, ok, problem, warning } from './types.js';

const iso = (ms: Millis): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

export function configCheck(config: Config, missingForSend: readonly string[]): CheckResult {
  const from = config.envFile ? `.env values from ${config.envFile}` : 'no .env file; the environment only';
  if (missingForSend.length > 0) {
    return problem(
      'configuration',
      `The configuration is valid (${from}), but send-due would refuse to send: ${missingForSend.join(' ')}`,
      'Set the missing variables in the env file that the crontab line uses.',
    );
  }
  return ok('configuration', `The configuration is valid and complete for sending (${from}).`);
}

export function schemaCheck(version: { current: number; latest: number }): CheckResult {
  if (version.current === version.latest) {
    return ok('schema', `The schema is current (version ${version.current}).`);
  }
  if (version.current < version.latest) {
    return problem(
      'schema',
      `The database has schema version ${version.current}; this newsletter needs ${version.latest}. Every command but init refuses it.`,
      'Run `newsletter init` to migrate it (safe to run again).',
    );
  }
  return problem(
    'schema',
    `The database has schema version ${version.current}, newer than this newsletter (${version.latest}).`,
    'Upgrade newsletter on this host.',
  );
}

/** `PRAGMA integrity_check` answers the single row `ok`, or up to 100 rows describing damage. */
export function integrityCheck(rows: readonly string[]): CheckResult {
  if (rows.length === 1 && rows[0] === 'ok') return ok('integrity', 'PRAGMA integrity_check: ok.');
  return problem(
    'integrity',
    `PRAGMA integrity_check found damage: ${rows.slice(0, 5).join('; ')}${rows.length > 5 ? ` (and ${rows.length - 5} more)` : ''}.`,
    'Stop the cron line, copy the file aside, and restore the last backup (or try `sqlite3 DB .recover`).',
  );
}

export function hostBindingCheck(
  bound: string | null,
  current: { hostId: string; source: string; warning?: string },
): CheckResult[] {
  const results: CheckResult[] = [];
  if (bound === current.hostId) {
    results.push(
      ok('host', `The database is bound to this host (${current.hostId}, from ${current.source}).`),
    );
  } else {
    results.push(
      problem(
        'host',
        bound === null
          ? `The database is bound to no host; this is host ${current.hostId}. send-due refuses to send here (exit 7).`
          : `The database is bound to host ${bound}, but this is host ${current.hostId}: a cloned server, or a database moved here? send-due refuses to send here (exit 7).`,
        'If this host really is the one that should send, run `newsletter host adopt` here and remove the cron line on the other host; if it is a clone, remove its cron line.',
      ),
    );
  }
  if (current.warning) results.push(warning('host-id', current.warning));
  return results;
}

/** Hosts that have run send-due against this SQLite database, from the runs table. */
export function hostsCheck(runs: readonly RunInfo[], boundHostId: string | null): CheckResult {
  const byHost = new Map<string, { hostnames: Set<string>; runs: number; last: Millis }>();
  for (const run of runs) {
    const entry = byHost.get(run.hostId) ?? { hostnames: new Set<string>(), runs: 0, last: 0 };
    entry.hostnames.add(run.hostname);
    entry.runs += 1;
    entry.last = Math.max(entry.last, run.startedAt);
    byHost.set(run.hostId, entry);
  }
  if (byHost.size <= 1) {
    const [only] = byHost.keys();
    return ok(
      'hosts',
      only === undefined
        ? 'No run has been recorded yet.'
        : `Every recorded run came from one host (${only}).`,
    );
  }
  const list = [...byHost.entries()]
    .sort((a, b) => b[1].last - a[1].last)
    .map(
      ([hostId, entry]) =>
        `${hostId}${hostId === boundHostId ? ' (bound)' : ''} on ${[...entry.hostnames].join('/')}: ${entry.runs} runs, last ${iso(entry.last)}`,
    );
  return warning(
    'hosts',
    `${byHost.size} different hosts have run send-due against this SQLite database: ${list.join('; ')}. ` +
      'A SQLite database belongs to one host: another host in this list is a clone or an old home.',
    'Remove the send-due cron line on every host but the bound one (`newsletter runs` shows each run). For several sending hosts, use PostgreSQL.',
  );
}

export interface LockObservation {
  path: string;
  /** The lock folder exists. */
  exists: boolean;
  /** Fresh (refreshed less than `stale` ago). */
  fresh: boolean;
  /** The last refresh of the lock folder. */
  refreshedAt: Millis | null;
  /** From `<lock>.owner`, written when the lock was taken. */
  owner: { pid: number; hostname: string; since: Millis } | null;
}

export function lockCheck(
  lock: LockObservation,
  liveRuns: readonly RunInfo[],
  context: { now: Millis; hostname: string; isProcessAlive: (pid: number) => boolean },
): CheckResult {
  const name = 'lock';
  if (!lock.exists) return ok(name, `The run lock is free (${lock.path}).`);
  const owner = lock.owner;
  const here = owner !== null && owner.hostname === context.hostname;
  const alive = owner !== null && here && context.isProcessAlive(owner.pid);
  const since = owner
    ? iso(owner.since)
    : lock.refreshedAt === null
      ? 'an unknown time'
      : iso(lock.refreshedAt);
  const who = owner ? `pid ${owner.pid} on ${owner.hostname}` : 'a process that left no owner file';

  if (here && !alive) {
    return warning(
      name,
      `The run lock ${lock.path} was left by ${who} since ${since}, and that process is gone (it crashed or was killed).`,
      "Nothing to do: the next send-due takes a dead process's lock over at once and turns its claimed rows into `unknown` (then see `newsletter status`).",
    );
  }
  if (!lock.fresh) {
    return warning(
      name,
      `The run lock ${lock.path} is stale: held by ${who} since ${since}, not refreshed since ${lock.refreshedAt === null ? 'an unknown time' : iso(lock.refreshedAt)}${alive ? '; the process still exists (paused or stuck?)' : ''}.`,
      alive
        ? `Look at pid ${owner?.pid} (\`ps -o pid,stat,etime,cmd -p ${owner?.pid}\`); the next send-due takes the stale lock over and the ledger fences its late writes.`
        : 'Nothing to do: the next send-due takes a stale lock over.',
    );
  }
  const run = owner ? liveRuns.find((r) => r.pid === owner.pid && r.hostname === owner.hostname) : undefined;
  if (!run) {
    return ok(
      name,
      `The run lock ${lock.path} is held by ${who} since ${since}; no live run is registered for it yet (a run starting up).`,
    );
  }
  if (run.leaseUntil > context.now) {
    return ok(
      name,
      `The run lock ${lock.path} is held by ${who} since ${since}: run ${run.id}, whose lease is alive until ${iso(run.leaseUntil)}.`,
    );
  }
  return warning(
    name,
    `The run lock ${lock.path} is held by ${who} since ${since}, but the lease of its run ${run.id} expired at ${iso(run.leaseUntil)}: the process is alive but not renewing (paused, or blocked on the disk?).`,
    `Look at pid ${owner?.pid}. Its claimed rows become \`unknown\` when the next run expires it, and its late writes are refused.`,
  );
}

export interface NewsletterState {
  newsletter: Newsletter;
  counts: DeliveryCounts;
  /** Rows `claimed` by a closed or missing run (Store.strandedClaims); 0 when not given. */
  stranded?: number;
}

/**
 * Things in the ledger that wait for a person, or for a run that is not coming. `liveRuns`: every
 * run whose row is open (no `ended_at`), whatever its lease says.
 */
export function ledgerChecks(
  newsletters: readonly NewsletterState[],
  liveRuns: readonly RunInfo[],
  now: Millis,
): CheckResult[] {
  const results: CheckResult[] = [];
  const unknown = newsletters.filter((n) => n.counts.unknown > 0);
  if (unknown.length > 0) {
    results.push(
      problem(
        'unknown',
        `${unknown.map((n) => `newsletter ${n.newsletter.id}: ${n.counts.unknown} unknown`).join('; ')}. These messages may or may not have been delivered; they are never resent on their own.`,
        `Look their Message-IDs up in the mail server's log (\`newsletter show ${unknown[0]?.newsletter.id}\`), then \`newsletter reconcile ID --mark-sent EMAIL…\` for the delivered ones and \`--resend\` for the rest.`,
      ),
    );
  } else {
    results.push(ok('unknown', 'No delivery is waiting for reconcile.'));
  }
  const unsettled = findUnsettled(
    newsletters.map((n) => ({ ...n, stranded: n.stranded ?? 0 })),
    liveRuns.length,
  );
  results.push(...unsettledChecks(unsettled));

  const failed = newsletters.filter((n) => n.newsletter.status === 'failed');
  if (failed.length > 0) {
    results.push(
      warning(
        'build',
        `${failed.length === 1 ? 'A newsletter' : `${failed.length} newsletters`} failed to build and sent nothing: ${failed
          .map((n) => `${n.newsletter.id} (${(n.newsletter.failureReason ?? '').split('\n')[0]})`)
          .join('; ')}.`,
        'Fix the template and store it (`newsletter edit ID --template FILE`), then `newsletter schedule ID --now` (`newsletter show ID` has the whole reason).',
      ),
    );
  }

  const live = liveRuns.filter((run) => run.leaseUntil > now);
  // A sending newsletter with nothing left to claim has its own check (sending-idle) above.
  const idle = new Set(unsettled.filter((u) => u.kind === 'sending-idle').map((u) => u.newsletterId));
  const sending = newsletters.filter((n) => n.newsletter.status === 'sending' && !idle.has(n.newsletter.id));
  if (sending.length > 0 && live.length === 0) {
    results.push(
      warning(
        'sending',
        `${sending.map((n) => `newsletter ${n.newsletter.id} (${n.counts.pending + n.counts.retry} to go)`).join('; ')} ${sending.length === 1 ? 'is' : 'are'} sending, but no run is live.`,
        'Normal for a minute between runs; if it stays so, check that cron runs send-due (`newsletter runs` shows the last run and how it ended).',
      ),
    );
  }

  const overdue = newsletters.filter(
    (n) =>
      n.newsletter.status === 'scheduled' &&
      n.newsletter.scheduledAt !== null &&
      n.newsletter.scheduledAt < now - 5 * 60_000,
  );
  if (overdue.length > 0 && live.length === 0) {
    results.push(
      warning(
        'due',
        `${overdue.map((n) => `newsletter ${n.newsletter.id} was due at ${iso(n.newsletter.scheduledAt as number)}`).join('; ')}, and no run has started it.`,
        'Check that cron runs send-due for this database (see the cron check), and what `newsletter send-due` says when run by hand.',
      ),
    );
  }
  return results;
}

/**
 * One check per kind of state that no run will settle (domain/unsettled.ts), shown only when
 * found. Stranded and cancelled-retry rows need a person: problems. A sending newsletter with
 * nothing left to claim completes at the next send-due unless stranded rows hold it (which the
 * stranded check already reports): a warning.
 */
function unsettledChecks(unsettled: readonly Unsettled[]): CheckResult[] {
  const of = (kind: UnsettledKind) => unsettled.filter((u) => u.kind === kind);
  const commands = (items: readonly Unsettled[]) => items.map((u) => `\`${u.command}\``).join(', ');
  const said = (items: readonly Unsettled[]) => `${items.map((u) => u.message).join('; ')}.`;
  const results: CheckResult[] = [];
  const stranded = of('stranded');
  if (stranded.length > 0) {
    results.push(
      problem(
        'stranded',
        said(stranded),
        `Look their Message-IDs up in the mail server's log (\`newsletter show ${stranded[0]?.newsletterId}\` lists them), ` +
          `then ${commands(stranded)}: --mark-sent EMAIL… for the delivered ones, --resend for the rest (a cancelled newsletter resends nothing).`,
      ),
    );
  }
  const retries = of('cancelled-retry');
  if (retries.length > 0) {
    results.push(
      problem(
        'cancelled-retry',
        said(retries),
        `Run ${commands(retries)}: it writes them skipped (cancelled); give the addresses the server's log shows delivered when the newsletter also has unknown deliveries.`,
      ),
    );
  }
  const idle = of('sending-idle');
  if (idle.length > 0) {
    results.push(warning('sending-idle', said(idle), `Run ${commands(idle)}.`));
  }
  return results;
}
