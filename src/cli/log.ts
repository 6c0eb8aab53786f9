/**
 * Event output on stderr: what a run did, as it does it. stdout stays for results (a summary, or
 * `--json`), so a script can keep the two apart.
 *
 * Two formats (`--log-format text|json`; the default follows whoever reads them, see
 * resolveLogFormat):
 * - text: `2026-12-01T09:00:01.234Z run 12 started (host h-…, pid 4242)`, for people: a terminal,
 *   or cron's mail;
 * - json: one object per line, `{"time","level","event","message",…the event's fields}`, for log
 *   collectors (the systemd journal, Loki).
 *
 * How much: errors always; warnings (throttled, unknown deliveries, a lease lost) unless
 * `--quiet`; everything else only with `--verbose`. So a run that went well prints nothing under
 * cron (promise 5), and a run that did not says why, in the format asked for.
 */
import type { EngineEvent } from '../engine/events.js';
import { formatInZone } from '../domain/zone.js';
import { redactText } from './output.js';

export type LogFormat = 'text' | 'json';
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export interface LogOptions {
  logFormat?: string | undefined;
  verbose?: boolean | undefined;
  quiet?: boolean | undefined;
}

export interface LogRecord {
  time: string;
  level: LogLevel;
  event: string;
  message: string;
  [field: string]: unknown;
}

/** The variables systemd sets for a service's processes (systemd.exec(5)), read by resolveLogFormat. */
export interface LogEnvironment {
  JOURNAL_STREAM?: string | undefined;
  INVOCATION_ID?: string | undefined;
}

/**
 * An explicit --log-format wins. Otherwise JSON lines only under systemd, whose journal keeps
 * them for a collector (`JOURNAL_STREAM`: stderr goes to the journal; `INVOCATION_ID`: started by
 * a unit, e.g. with stderr redirected to a file); text everywhere else. Not "text on a terminal":
 * cron's stderr is a pipe too, and what cron mails is read by a person.
 */
export function resolveLogFormat(option: string | undefined, env: LogEnvironment): LogFormat {
  if (option === 'json' || option === 'text') return option;
  return env.JOURNAL_STREAM || env.INVOCATION_ID ? 'json' : 'text';
}

/** The least severe level shown: errors only with --quiet, everything with --verbose. */
export function minimumLevel(options: LogOptions): LogLevel {
  if (options.quiet) return 'error';
  if (options.verbose) return 'debug';
  return 'warn';
}

/** How much an event matters to the operator: only warn and error reach cron's mail. */
export function eventLevel(event: EngineEvent): LogLevel {
  switch (event.type) {
    case 'run-started':
    case 'newsletter-built':
    case 'newsletter-taken-by-another-run':
    case 'newsletter-changed-during-build':
    case 'newsletter-sent':
    case 'database-busy':
      return 'info';
    case 'run-settled':
      return event.unknown > 0 ? 'warn' : 'info';
    case 'batch-claimed':
      return 'debug';
    case 'outcomes-recorded':
      return event.unknown > 0 || event.refused > 0 ? 'warn' : 'debug';
    case 'runs-expired':
      return event.unknown > 0 || event.stranded > 0 ? 'warn' : 'info';
    case 'newsletter-build-failed':
      return 'error';
    case 'clock-skew':
      return 'warn';
    case 'stopping':
      if (event.reason === 'budget' || event.reason === 'quota') return 'info';
      if (event.reason === 'throttled' || event.reason === 'unreachable' || event.reason === 'signal')
        return 'warn';
      return 'error';
    case 'run-ended':
      return event.outcome === 'error' ? 'error' : 'info';
  }
}

/** One line for a person. The same words appear as `message` in the JSON lines. */
export function eventMessage(event: EngineEvent): string {
  switch (event.type) {
    case 'run-started':
      return `run ${event.runId} started (host ${event.hostId}, pid ${event.pid})`;
    case 'runs-expired':
      return [
        `${event.runs} dead runs ended; ${event.unknown} of their claims are now unknown`,
        event.stranded > 0
          ? `; ${event.stranded} deliveries left claimed by closed runs are now unknown`
          : '',
        event.cancelledRetries > 0
          ? `; ${event.cancelledRetries} retries of cancelled newsletters are now skipped`
          : '',
      ].join('');
    case 'newsletter-built':
      return `newsletter ${event.newsletterId} built and verified; now sending`;
    case 'clock-skew':
      return `this host's clock is ${(Math.abs(event.skewMs) / 1000).toFixed(1)} s ${event.skewMs > 0 ? 'behind' : 'ahead of'} the database server's: leases use the database's clock, but send times, retry times and quota hours are read from this host's; synchronise it with NTP (chrony, systemd-timesyncd)`;
    case 'newsletter-build-failed':
      return `newsletter ${event.newsletterId} failed to build: ${event.reason.split('\n')[0]}`;
    case 'newsletter-taken-by-another-run':
      return `newsletter ${event.newsletterId} was started by another run`;
    case 'newsletter-changed-during-build':
      return `newsletter ${event.newsletterId} changed while it was being built (now ${event.status}${event.scheduledAt === null ? '' : `, for ${formatInZone(event.scheduledAt, null)}`}): nothing sent`;
    case 'database-busy':
      return `the database is busy (${event.method}): waiting for it, up to the end of the lease (${event.detail})`;
    case 'run-settled':
      return `run ${event.runId} ended holding rows: ${event.unknown} handed over without a recorded outcome are now unknown, ${event.released} never handed over go back to retry`;
    case 'batch-claimed':
      return `newsletter ${event.newsletterId}: claimed ${event.claimed}, skipped ${event.skipped}`;
    case 'outcomes-recorded':
      return `newsletter ${event.newsletterId}: ${event.sent} sent, ${event.failed} failed${hardBouncesNote(event.hardBounces)}, ${event.retry} retry, ${event.unknown} unknown${event.refused ? `, ${event.refused} writes refused` : ''}`;
    case 'newsletter-sent':
      return `newsletter ${event.newsletterId} is sent: every recipient has an outcome`;
    case 'stopping':
      return `stopping (${event.reason}): ${event.detail}`;
    case 'run-ended':
      return `run ${event.runId} ended: ${event.outcome}`;
  }
}

/** " (2 hard bounces, now suppressed)" after a count of failed deliveries; nothing when none. */
export function hardBouncesNote(hardBounces: number): string {
  if (hardBounces === 0) return '';
  return ` (${hardBounces} hard bounce${hardBounces === 1 ? '' : 's'}, now suppressed)`;
}

/** The JSON line's fields: the event's own, under their own names, beside the common four. */
export function eventRecord(event: EngineEvent, time: Date): LogRecord {
  const { type, ...fields } = event;
  return {
    time: time.toISOString(),
    level: eventLevel(event),
    event: type,
    message: eventMessage(event),
    ...fields,
  };
}

export function formatRecord(record: LogRecord, format: LogFormat): string {
  if (format === 'json') return JSON.stringify(record);
  const prefix = record.level === 'error' ? 'error: ' : record.level === 'warn' ? 'warning: ' : '';
  return `${record.time} ${prefix}${record.message}`;
}

export type LineWriter = (line: string) => void;

export class Logger {
  readonly format: LogFormat;
  private readonly minimum: LogLevel;
  private readonly now: () => Date;
  private readonly defaultWriter: LineWriter;
  private writer: LineWriter;

  constructor(options: { format: LogFormat; minimum: LogLevel; write: LineWriter; now?: () => Date }) {
    this.format = options.format;
    this.minimum = options.minimum;
    this.now = options.now ?? (() => new Date());
    this.defaultWriter = options.write;
    this.writer = options.write;
  }

  enabled(level: LogLevel): boolean {
    return RANK[level] >= RANK[this.minimum];
  }

  /** Routes lines elsewhere (the progress bar prints them above itself); null restores stderr. */
  setWriter(writer: LineWriter | null): void {
    this.writer = writer ?? this.defaultWriter;
  }

  event(event: EngineEvent): void {
    const record = eventRecord(event, this.now());
    if (this.enabled(record.level)) this.write(record);
  }

  log(level: LogLevel, event: string, message: string, fields: Record<string, unknown> = {}): void {
    if (!this.enabled(level)) return;
    this.write({ time: this.now().toISOString(), level, event, message, ...fields });
  }

  private write(record: LogRecord): void {
    // Secrets never leave in a log line, whatever field they hide in.
    this.writer(`${redactText(formatRecord(record, this.format))}\n`);
  }
}

/** The logger for this process's stderr, from the global options and the environment. */
export function createLogger(
  options: LogOptions,
  stream: NodeJS.WriteStream = process.stderr,
  env: LogEnvironment = process.env,
): Logger {
  return new Logger({
    format: resolveLogFormat(options.logFormat, env),
    minimum: minimumLevel(options),
    write: (line) => {
      stream.write(line);
    },
  });
}
