/**
 * Output: chalk for people on a terminal, one JSON document for `--json`, nothing for cron on
 * success. Every text that may carry configuration passes through the redactor first.
 */
import chalk from 'chalk';
import { formatInZone } from '../domain/zone.js';

let redact: (text: string) => string = (text) => text;

export function setRedactor(fn: (text: string) => string): void {
  redact = fn;
}

/** Adds secrets known only to one command (migrate-db's target) to those already masked. */
export function extendRedactor(more: (text: string) => string): void {
  const before = redact;
  redact = (text) => more(before(text));
}

export function redactText(text: string): string {
  return redact(text);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${redact(JSON.stringify(value, null, 2))}\n`);
}

export function println(text = ''): void {
  process.stdout.write(`${redact(text)}\n`);
}

export function warn(text: string): void {
  process.stderr.write(`${chalk.yellow('warning:')} ${redact(text)}\n`);
}

export function printError(message: string, details: readonly string[]): void {
  process.stderr.write(`${chalk.red('error:')} ${redact(message)}\n`);
  for (const line of details) process.stderr.write(`  ${redact(line)}\n`);
}

export const isTerminal = (): boolean => process.stdout.isTTY === true;

/** A plain table: columns padded to their widest cell. */
export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((row) => row.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? '').length)));
  const line = (row: string[]) =>
    row
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [chalk.bold(line(headers)), ...cells.slice(1).map(line)].join('\n');
}

/** A time in a table: in TZ, with its offset, as every time a person reads (src/domain/zone.ts). */
export function time(ms: number | null): string {
  return ms === null ? '-' : formatInZone(ms, null);
}
