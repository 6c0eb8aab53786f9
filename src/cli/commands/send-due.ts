/**
 * `send-due`: cron's command. Quiet when all went well and stdout is not a terminal; a clear
 * message on stderr and a documented exit code when something needs a person.
 */
import { hostname } from 'node:os';
import { type Config, problemsForRealSend } from '../../config.js';
import { ConfigError, LockHeldError, NewsletterError } from '../../domain/errors.js';
import { ExitCode, type ExitCodeValue } from '../../domain/exit-codes.js';
import { FAILURE_RATE_LIMIT, type FailureAlarm, failureAlarm } from '../../domain/failure-alarm.js';
import { shortDigest } from '../../domain/stored-template.js';
import { describeTransport } from '../../domain/transport-spec.js';
import { formatInZone } from '../../domain/zone.js';
import { dryRun } from '../../engine/dry-run.js';
import { type SendDueResult, sendDue } from '../../engine/send-due.js';
import { StopController } from '../../engine/stop.js';
import { pidScope } from '../../host/pid-scope.js';
import { isProcessAlive } from '../../host/process.js';
import { lockLocationOf } from '../../host/lock-location.js';
import { acquireRunLock } from '../../host/run-lock.js';
import type { ExitNow } from '../command-actions.js';
import type { Context } from '../context.js';
import { templatesRootOf, withStore } from '../context.js';
import { currentHost } from '../host-identity.js';
import { messageOptionsOf, sendDueOptionsOf } from '../engine-options.js';
import { failpointsFrom } from '../failpoints.js';
import { createLogger, hardBouncesNote } from '../log.js';
import { isTerminal, printError, printJson, println, warn } from '../output.js';
import { type SendDueProgress, sendDueProgress, sendDueWorkLeft, wantsProgress } from '../progress.js';
import { parseId } from './newsletters.js';
import { keepHeapSmall } from '../heap.js';

interface SendDueOptions {
  dryRun?: boolean;
  newsletter?: string;
  maxMessages?: number;
  maxSeconds?: number;
  json?: boolean;
}

const loadRender = async () => {
  const [{ buildBody }, { preparePersonaliser }] = await Promise.all([
    import('../../render/build.js'),
    import('../../render/personalise.js'),
  ]);
  return { buildBody, preparePersonaliser };
};

/**
 * From this rate up, SQLite's claims and outcome writes run on a thread of their own
 * (src/store/sqlite/ledger-thread.ts). Only a fast send keeps the main thread busy enough for that
 * to pay (bench/NOTES.md, issue 17, session 6: +8 % at the defaults with the rate unlimited); the
 * thread's start costs ~75 ms of CPU, which a cron run at the default 10 a second would pay every
 * minute for nothing.
 */
const LEDGER_THREAD_MIN_RATE = 1000;

export function wantsLedgerThread(config: Pick<Config, 'rate'>): boolean {
  return config.rate >= LEDGER_THREAD_MIN_RATE;
}

/**
 * Returns the exit code (README, "Exit codes"). `exitNow` is main.ts's: a second SIGTERM/SIGINT
 * ends the process with it at once, without waiting for the messages in flight.
 */
export async function sendDueCommand(
  context: Context,
  options: SendDueOptions,
  exitNow: ExitNow,
): Promise<ExitCodeValue> {
  if (options.newsletter !== undefined && !options.dryRun) {
    throw new ConfigError('--newsletter only goes with --dry-run; a real run sends whatever is due.');
  }
  if (options.dryRun) return dryRunCommand(context, options);

  const { config } = context;
  const problems = problemsForRealSend(config);
  if (problems.length > 0) throw new ConfigError('send-due cannot send with this configuration:', problems);
  const host = currentHost(config);
  const stop = new StopController();
  const verbose = context.global.verbose === true && !options.json;
  // Events on stderr, as text or JSON lines (src/cli/log.ts); a progress bar only on a terminal.
  const log = createLogger({ ...context.global, verbose });
  const onSignal = (signal: NodeJS.Signals) => {
    if (stop.reason === 'signal') {
      // A second signal: the operator means it. Claimed rows of this run become `unknown` later.
      process.stderr.write(`newsletter: second ${signal}, aborting at once\n`);
      exitNow(ExitCode.interrupted);
    }
    stop.stop('signal', `received ${signal}`);
    log.event({
      type: 'stopping',
      reason: 'signal',
      detail: `received ${signal}: finishing the messages in flight (a second signal aborts at once)`,
    });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  const lockLocation = lockLocationOf(config.database, config.lockDir);
  const progress: SendDueProgress | null = wantsProgress(context.global)
    ? await sendDueProgress(
        await withStore(context, { readonly: true }, (store) => sendDueWorkLeft(store, Date.now())),
        log,
      )
    : null;
  let result: SendDueResult;
  try {
    result = await withStore(context, { ledgerThread: wantsLedgerThread(config) }, (store) =>
      sendDue({
        options: sendDueOptionsOf(config),
        store,
        hostId: host.hostId,
        hostname: hostname(),
        pid: process.pid,
        pidScope: pidScope(),
        now: Date.now,
        monotonic: () => performance.now(),
        stop,
        events: (event) => {
          log.event(event);
          progress?.onEvent(event);
        },
        acquireLock: (onCompromised) =>
          acquireRunLock({
            ...lockLocation,
            staleMs: config.lockStaleMs,
            updateMs: Math.max(1000, Math.floor(config.lockStaleMs / 12)),
            onCompromised,
          }),
        isProcessAlive,
        loadRender,
        loadTransport: async () => {
          const { createTransport } = await import('../../transport/index.js');
          return createTransport(config.transport!, {
            maxConnections: config.connections,
            timeoutMs: config.smtpTimeoutMs,
            dkim: config.dkim,
            tlsPolicy: config.smtpTls.policy,
            ca: config.smtpTls.ca?.pem ?? null,
          });
        },
        maxMessages: options.maxMessages ?? null,
        maxSeconds: options.maxSeconds ?? null,
        templatesRoot: (newsletter) => templatesRootOf(newsletter.templatePath),
        at: failpointsFrom(process.env.NEWSLETTER_FAILPOINTS),
      }),
    );
  } catch (error) {
    // Another run is sending: under cron (every minute, during a long send) that is routine, not
    // news for the operator's mailbox (promise 5). The exit code says it; a person at a terminal
    // or --verbose also gets the message.
    if (error instanceof LockHeldError && !isTerminal() && !verbose) return ExitCode.lockHeld;
    if (log.format === 'json' && error instanceof NewsletterError) {
      // JSON lines: the error is one more line, with its details and exit code.
      log.log(
        error instanceof LockHeldError ? 'warn' : 'error',
        error instanceof LockHeldError ? 'lock-held' : 'error',
        error.message,
        {
          details: error.details,
          exitCode: error.exitCode,
        },
      );
      return error.exitCode;
    }
    throw error;
  } finally {
    progress?.stop();
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }

  const alarm = failureAlarm(result.attempts, result.batches);
  const exitCode = exitCodeOf(result, alarm);
  if (options.json) {
    // One tally per batch is for the rule, not for the reader: the verdict stands for them.
    const { batches: _perBatch, ...summary } = result;
    printJson({
      ...summary,
      failureAlarm: alarm,
      transport: describeTransport(config.transport!),
      exitCode,
    });
    return exitCode;
  }
  if (result.idle) {
    // Only when someone reads it (never under cron): drafts are the usual "why did nothing go?".
    if (isTerminal() || verbose) println(`Nothing is due${await draftsNote(context)}.`);
    return exitCode;
  }
  const summary =
    `run ${result.runId}: ${result.counts.sent} sent, ${result.counts.failed} failed${hardBouncesNote(result.attempts.hardBounces)}, ${result.counts.retry} to retry, ` +
    `${result.counts.unknown} unknown, ${result.counts.skipped} skipped`;
  if (exitCode === ExitCode.ok) {
    if ((isTerminal() || verbose) && !context.global.quiet) {
      println(summary);
      for (const n of result.newsletters) println(`  newsletter ${n.id} (${n.subject}): ${n.result}`);
      if (result.stopReason === 'quota')
        println(`  stopped claiming: ${result.stopDetail}; the next hour continues`);
      if (result.attempts.hardBounces > 0)
        println(
          '  hard bounces (5.1.x, no such user) are suppressed: later newsletters skip those addresses; `newsletter show ID` lists them',
        );
    }
    return exitCode;
  }
  // Something needs a person: say it on stderr, which cron mails (one JSON line with JSON logs).
  const report =
    log.format === 'json'
      ? (message: string, details: readonly string[]) =>
          log.log('error', 'run-failed', message, { details, exitCode, runId: result.runId })
      : printError;
  report(`send-due ${stopText(result, alarm)}`, [
    summary,
    ...(alarm === null ? [] : [alarmAdvice(alarm)]),
    ...result.newsletters
      .filter((n) => n.result === 'build-failed')
      .flatMap((n) => {
        const [first = '', ...more] = (n.reason ?? '').split('\n');
        return [
          `newsletter ${n.id} (${n.subject}) failed to build and was sent to nobody: ${first}`,
          ...more.map((line) => `  ${line}`),
          `Fix the template and store it (\`newsletter edit ${n.id} --template FILE\`), then \`newsletter schedule ${n.id} --now\` (\`newsletter show ${n.id}\` has the whole reason).`,
        ];
      }),
    ...(result.expired.unknown > 0
      ? [
          `${result.expired.unknown} deliveries of crashed runs are now unknown: see \`newsletter status\` and \`newsletter reconcile\`.`,
        ]
      : []),
    ...(result.expired.stranded > 0
      ? [
          `${result.expired.stranded} deliveries left claimed by runs that had already closed (an older version's error path) are now unknown: see \`newsletter status\` and \`newsletter reconcile\`.`,
        ]
      : []),
    ...(result.counts.unknown > 0
      ? ['Unknown deliveries are never resent on their own: settle them with `newsletter reconcile`.']
      : []),
  ]);
  return exitCode;
}

function exitCodeOf(result: SendDueResult, alarm: FailureAlarm | null): ExitCodeValue {
  switch (result.stopReason) {
    case 'lease-lost':
    case 'lock-compromised':
      return ExitCode.lostLease;
    case 'signal':
      return ExitCode.interrupted;
    case 'fatal':
      return ExitCode.config;
    default:
      break;
  }
  const buildFailed = result.newsletters.some((n) => n.result === 'build-failed');
  const expiredUnknown = result.expired.unknown + result.expired.stranded;
  // Failed deliveries alone are not news: suppressed hard bounces are list hygiene; only a failure
  // rate that says the relay or the list is broken is (src/domain/failure-alarm.ts).
  if (buildFailed || alarm !== null || result.counts.unknown > 0 || expiredUnknown > 0) {
    return ExitCode.partlyFailed;
  }
  if (result.stopReason === 'throttled' || result.stopReason === 'unreachable') return ExitCode.transient;
  // 'quota' is 0, not transient (9): the limit is the operator's own plan, not a fault, and cron
  // would otherwise mail the same non-news every minute until the hour turns. The run says it
  // with --verbose (or on a terminal), and `newsletter runs` shows its outcome `quota`.
  return ExitCode.ok;
}

/** What to do about failures that raised the alarm: the words under cron's mail. */
function alarmAdvice(alarm: FailureAlarm): string {
  const what =
    alarm.kind === 'whole-batch'
      ? `All ${alarm.attempts} attempts of a batch failed`
      : `${alarm.failed} of ${alarm.attempts} attempts (${alarm.percent} %) failed for other reasons than a hard bounce, more than ${FAILURE_RATE_LIMIT * 100} %`;
  return `${what}: the relay or the list may be broken. Read the replies with \`newsletter show ID\` before the next send; \`newsletter suppress list\` shows what was suppressed.`;
}

function stopText(result: SendDueResult, alarm: FailureAlarm | null): string {
  switch (result.stopReason) {
    case 'lease-lost':
      return `stopped: it lost its lease (${result.stopDetail}); its late writes were refused.`;
    case 'lock-compromised':
      return `stopped: its run lock was taken or removed (${result.stopDetail}).`;
    case 'signal':
      return `stopped on a signal; in-flight messages were recorded and the rest waits for the next run.`;
    case 'fatal':
      return `stopped: the transport refused to work (${result.stopDetail}). Claimed recipients went back to retry; fix the configuration.`;
    case 'throttled':
      return `stopped: the SMTP server is throttling (${result.stopDetail}); the next run continues.`;
    case 'unreachable':
      return `stopped: the SMTP server is unreachable (${result.stopDetail}); the next run continues.`;
    case 'quota':
      return `stopped at the hourly quota (${result.stopDetail}), and some recipients need attention.`;
    default:
      if (alarm !== null) return 'finished, but too many recipients failed.';
      if (result.newsletters.some((n) => n.result === 'build-failed'))
        return 'finished, but a newsletter failed to build.';
      return 'finished, but some recipients need attention.';
  }
}

/** " (2 drafts not scheduled)" when there are drafts, else "". */
async function draftsNote(context: Context): Promise<string> {
  const drafts = await withStore(context, { readonly: true }, async (store) =>
    (await store.listNewsletters()).filter((n) => n.status === 'draft'),
  );
  if (drafts.length === 0) return '';
  return ` (${drafts.length} ${drafts.length === 1 ? 'draft' : 'drafts'} not scheduled)`;
}

async function dryRunCommand(context: Context, options: SendDueOptions): Promise<ExitCodeValue> {
  const newsletterId = options.newsletter === undefined ? null : parseId(options.newsletter);
  keepHeapSmall();
  const result = await withStore(context, { readonly: true }, (store) =>
    dryRun({
      options: messageOptionsOf(context.config),
      store,
      now: Date.now,
      loadRender,
      counting: async () => (await import('../../transport/index.js')).createCountingTransport(),
      templatesRoot: (newsletter) => templatesRootOf(newsletter.templatePath),
      newsletterId,
    }),
  );
  const ok = result.newsletters.every((n) => n.ok);
  const exitCode = ok ? ExitCode.ok : ExitCode.partlyFailed;
  if (options.json) {
    printJson({ dryRun: true, ok, ...result });
    return exitCode;
  }
  if (result.newsletters.length === 0) {
    // The report is the point of a dry run, terminal or pipe (CI reads it from one).
    println(`Dry run: nothing is due${await draftsNote(context)}.`);
    return exitCode;
  }
  for (const n of result.newsletters) {
    const due =
      n.scheduledAt === null ? '' : `; due ${formatInZone(Date.parse(n.scheduledAt), n.scheduledZone)}`;
    const version = n.templateSha256 === null ? '' : `; template sha256 ${shortDigest(n.templateSha256)}`;
    const line = `newsletter ${n.id} (${n.subject}, ${n.status}): audience ${n.audience}, would send ${n.wouldSend}, skip ${n.wouldSkip}${n.retry ? `, retry ${n.retry}` : ''}${n.unknown ? `, ${n.unknown} unknown` : ''}${due}${version}`;
    if (n.ok) {
      println(`ok  ${line}`);
    } else {
      printError(`dry run: ${line}`, n.problems);
    }
    // Fields some recipients lack (src/domain/audience-fields.ts): worth a default, not a failure.
    for (const warning of n.warnings) warn(`newsletter ${n.id}: ${warning}`);
  }
  const missing = problemsForRealSend(context.config);
  if (missing.length > 0) {
    for (const problem of missing) warn(`a real send would refuse: ${problem}`);
  }
  return exitCode;
}
