/**
 * A progress bar on stderr, for a person watching `send-due` or `recipients import`: only when
 * stderr is a terminal, never with `--log-format json` or `--quiet`. Under cron, stderr is a pipe
 * and this module (and cli-progress) is never even loaded.
 *
 * Log lines printed while the bar is shown go above it (cli-progress redraws the bar under them).
 */
import { createReadStream } from 'node:fs';
import type { MultiBar, SingleBar } from 'cli-progress';
import type { EngineEvent } from '../engine/events.js';
import type { Store } from '../store/store.js';
import { type LogOptions, type Logger, resolveLogFormat } from './log.js';

export function wantsProgress(options: LogOptions, stream: NodeJS.WriteStream = process.stderr): boolean {
  return (
    stream.isTTY === true && !options.quiet && resolveLogFormat(options.logFormat, process.env) === 'text'
  );
}

export interface ProgressBar {
  increment(by: number): void;
  stop(): void;
}

export interface ProgressBarOptions {
  label: string;
  unit: string;
  total: number;
  logger?: Logger;
  stream?: NodeJS.WriteStream;
}

/** Loads cli-progress (only here, only for a terminal) and returns a maker of bars. */
export async function loadProgressBars(): Promise<(options: ProgressBarOptions) => ProgressBar> {
  const { default: cliProgress } = await import('cli-progress');
  return (options) => {
    const multibar: MultiBar = new cliProgress.MultiBar(
      {
        stream: options.stream ?? process.stderr,
        format: `${options.label} {bar} {value}/{total} ${options.unit} | {percentage}% | {rate}/s | ETA {eta_formatted}`,
        barCompleteChar: '\u2588',
        barIncompleteChar: '\u2591',
        barsize: 24,
        hideCursor: true,
        clearOnComplete: false,
        stopOnComplete: false,
        etaBuffer: 50,
        fps: 10,
      },
      cliProgress.Presets.shades_classic,
    );
    const started = Date.now();
    let value = 0;
    const rate = () => {
      const seconds = (Date.now() - started) / 1000;
      return seconds > 0 ? (value / seconds).toFixed(1) : '0.0';
    };
    const bar: SingleBar = multibar.create(Math.max(1, options.total), 0, { rate: '0.0' });
    options.logger?.setWriter((line) => {
      multibar.log(line);
      // cli-progress prints logged lines at its next redraw; redraw now so none is lost at stop().
      multibar.update();
    });
    let stopped = false;
    return {
      increment(by) {
        if (stopped || by <= 0) return;
        value = Math.min(Math.max(1, options.total), value + by);
        bar.update(value, { rate: rate() });
      },
      stop() {
        if (stopped) return;
        stopped = true;
        bar.update(value, { rate: rate() });
        multibar.stop();
        options.logger?.setWriter(null);
      },
    };
  };
}

export interface SendDueProgress {
  onEvent(event: EngineEvent): void;
  stop(): void;
}

/**
 * The bar for one `send-due` run: shown from the run's start (an idle run or a refused lock shows
 * nothing), advanced by the engine's events, and stopped at the run's end.
 * `total` is what was left to do when the run began: the pending and retry rows of every
 * newsletter that is due or sending.
 */
export async function sendDueProgress(total: number, logger: Logger): Promise<SendDueProgress> {
  const makeBar = await loadProgressBars();
  let bar: ProgressBar | null = null;
  return {
    onEvent(event) {
      switch (event.type) {
        case 'run-started':
          if (total > 0 && !bar) bar = makeBar({ label: 'sending', unit: 'recipients', total, logger });
          break;
        case 'batch-claimed':
          bar?.increment(event.skipped);
          break;
        case 'outcomes-recorded':
          bar?.increment(event.sent + event.failed + event.unknown + event.retry);
          break;
        case 'run-ended':
          bar?.stop();
          break;
        default:
          break;
      }
    },
    stop() {
      bar?.stop();
    },
  };
}

/** What is left to do for a run starting now: pending and retry rows of due and sending newsletters. */
export async function sendDueWorkLeft(store: Store, now: number): Promise<number> {
  const newsletters = [...(await store.dueNewsletters(now)), ...(await store.sendingNewsletters())];
  let total = 0;
  for (const newsletter of newsletters) {
    const counts = await store.counts(newsletter.id);
    total += counts.pending + counts.retry;
  }
  return total;
}

/**
 * The bar for `recipients import`: its total is the file's line count less the header (quoted
 * fields spanning lines make it an estimate; the bar never runs past it).
 */
export async function importProgress(file: string): Promise<ProgressBar> {
  const makeBar = await loadProgressBars();
  let lines = 0;
  for await (const chunk of createReadStream(file)) {
    const buffer = chunk as Buffer;
    for (let at = buffer.indexOf(10); at !== -1; at = buffer.indexOf(10, at + 1)) lines += 1;
  }
  return makeBar({ label: 'importing', unit: 'rows', total: Math.max(1, lines - 1) });
}
