/**
 * Prints an incoming-mail summary (src/bounces/summary.ts) for `bounces receive`, `import` and
 * `fetch` alike: --json prints the whole summary; text is quiet under cron (no terminal, no
 * --verbose) unless something changed, and problems always go to stderr.
 */
import { type IncomingSummary, summaryJson, summaryText } from '../bounces/summary.js';
import type { Context } from './context.js';
import { isTerminal, printJson, println, warn } from './output.js';

export function printIncomingSummary(
  context: Context,
  summary: IncomingSummary,
  options: { json?: boolean | undefined },
): void {
  if (options.json) {
    printJson(summaryJson(summary, context.config.softBounceLimit));
    return;
  }
  const quiet = !isTerminal() && !context.global.verbose;
  const { warnings, lines } = summaryText(summary, { quiet, verbose: context.global.verbose });
  for (const line of warnings) warn(line);
  for (const line of lines) println(line);
}
