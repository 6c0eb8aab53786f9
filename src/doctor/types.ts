/**
 * What `newsletter doctor` reports: one result per check, each saying how bad it is and what to
 * do. Checks are small functions that look and never change anything (the outbox probe aside,
 * which writes and removes one empty file, exactly as a send would).
 */
export type CheckLevel = 'ok' | 'warning' | 'problem';

export interface CheckResult {
  /** Short and stable, e.g. `database`, `lock`, `cron`: scripts may match on it. */
  name: string;
  level: CheckLevel;
  /** What was found, in one or two sentences. */
  message: string;
  /** What to do about it; absent when there is nothing to do. */
  fix?: string;
}

export const ok = (name: string, message: string): CheckResult => ({ name, level: 'ok', message });

export const warning = (name: string, message: string, fix?: string): CheckResult =>
  fix === undefined ? { name, level: 'warning', message } : { name, level: 'warning', message, fix };

export const problem = (name: string, message: string, fix?: string): CheckResult =>
  fix === undefined ? { name, level: 'problem', message } : { name, level: 'problem', message, fix };

/** Worst first is not wanted: checks keep their order, so related ones stay together. */
export function summarise(checks: readonly CheckResult[]): { problems: number; warnings: number } {
  return {
    problems: checks.filter((c) => c.level === 'problem').length,
    warnings: checks.filter((c) => c.level === 'warning').length,
  };
}
