/**
 * The counts of a batch of incoming messages, printed the same way by `bounces receive`,
 * `bounces import` and `bounces fetch`: one JSON document with --json, else a line or two of text
 * (quiet under cron when nothing changed). Addresses and problems come from strangers' reports:
 * text output escapes their control characters (src/domain/printable.ts); JSON escapes them itself.
 */
import { printable } from '../domain/printable.js';
import type { IncomingResult } from './handle-incoming.js';

/** How many addresses and problems text output names before "… and N more". */
const MAX_REPORTED = 20;

export interface IncomingSummary {
  messages: number;
  /** Authenticated bounces that counted now (hard + soft). */
  hard: number;
  soft: number;
  complaints: number;
  unsubscribes: number;
  /** Reports (DSN, ARF, mail to an unsubscribe address) that did not authenticate: nothing changed. */
  unmatched: number;
  /** Messages that are no report at all (replies, out-of-office): left alone. */
  notReports: number;
  /** Authenticated reports about a delivery already counted: nothing changed. */
  alreadyCounted: number;
  /** Addresses suppressed by these messages (bounce or complaint). */
  suppressed: string[];
  /** Addresses unsubscribed by mail to their unsubscribe address. */
  unsubscribed: string[];
  problems: string[];
  /** Why the first unmatched messages did not count (printed with --verbose; all in --json up to the cap). */
  unmatchedReasons: string[];
}

export function emptySummary(): IncomingSummary {
  return {
    messages: 0,
    hard: 0,
    soft: 0,
    complaints: 0,
    unsubscribes: 0,
    unmatched: 0,
    notReports: 0,
    alreadyCounted: 0,
    suppressed: [],
    unsubscribed: [],
    problems: [],
    unmatchedReasons: [],
  };
}

export function addToSummary(summary: IncomingSummary, result: IncomingResult): void {
  summary.messages += 1;
  summary.problems.push(...result.problems);
  switch (result.kind) {
    case 'unmatched':
      summary.unmatched += 1;
      if (result.reason && summary.unmatchedReasons.length < MAX_REPORTED)
        summary.unmatchedReasons.push(result.reason);
      return;
    case 'not-a-report':
      summary.notReports += 1;
      return;
    case 'already-counted':
      summary.alreadyCounted += 1;
      return;
    case 'unsubscribe':
      summary.unsubscribes += 1;
      for (const detail of result.details)
        if (detail.outcome === 'unsubscribe' && detail.suppressed) summary.unsubscribed.push(detail.address);
      return;
    case 'complaint':
    case 'bounce':
      for (const detail of result.details) {
        if (detail.outcome === 'hard') summary.hard += 1;
        else if (detail.outcome === 'soft') summary.soft += 1;
        else if (detail.outcome === 'complaint') summary.complaints += 1;
        else continue;
        if (detail.suppressed) summary.suppressed.push(detail.address);
      }
      return;
  }
}

/** Something changed: the line a cron job must not swallow. */
export function summaryHasNews(summary: IncomingSummary): boolean {
  return summary.hard + summary.soft + summary.complaints + summary.unsubscribes > 0;
}

export function summaryJson(summary: IncomingSummary, softBounceLimit: number): Record<string, unknown> {
  return { ...summary, softBounceLimit };
}

/** The problems (capped), then the counts' lines; [] when `quiet` and nothing changed. */
export function summaryText(
  summary: IncomingSummary,
  options: { quiet: boolean; verbose?: boolean | undefined },
): { warnings: string[]; lines: string[] } {
  const warnings = summary.problems.slice(0, MAX_REPORTED).map(printable);
  if (summary.problems.length > MAX_REPORTED)
    warnings.push(`… and ${summary.problems.length - MAX_REPORTED} more problems`);
  if (options.quiet && !summaryHasNews(summary)) return { warnings, lines: [] };
  const s = summary;
  const parts = [
    `${s.hard} new hard and ${s.soft} new soft bounces`,
    `${s.complaints} ${s.complaints === 1 ? 'complaint' : 'complaints'}`,
    `${s.unsubscribes} ${s.unsubscribes === 1 ? 'unsubscribe' : 'unsubscribes'}`,
    `${s.alreadyCounted} already counted`,
    `${s.unmatched} unmatched (not about our mail: nothing changed)`,
  ];
  if (s.notReports > 0) parts.push(`${s.notReports} other messages left alone`);
  const lines = [`Read ${s.messages} ${s.messages === 1 ? 'message' : 'messages'}: ${parts.join(', ')}.`];
  const named = (label: string, addresses: string[]): void => {
    if (addresses.length === 0) return;
    lines.push(`${label} ${addresses.length}: ${addresses.slice(0, MAX_REPORTED).map(printable).join(', ')}`);
    if (addresses.length > MAX_REPORTED) lines.push(`… and ${addresses.length - MAX_REPORTED} more`);
  };
  named('Suppressed', s.suppressed);
  named('Unsubscribed', s.unsubscribed);
  if (options.verbose) for (const reason of s.unmatchedReasons) lines.push(`Unmatched: ${printable(reason)}`);
  return { warnings, lines };
}
