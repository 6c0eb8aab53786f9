/**
 * Misspelt NEWSLETTER_* names where a send-due line gets its settings: the assignments above it in
 * the crontab (or a unit's Environment=) and the env file it reads. doctor's own environment may
 * not be cron's: an operator who runs `newsletter doctor` by hand would otherwise never hear that
 * the crontab says NEWSLETTER_FORM, and cron's runs would use the default From without a word.
 */
import { parse as parseDotenv } from 'dotenv';
import { describeUnknownVariable, type UnknownVariable, unknownVariables } from '../config-variables.js';
import { isSendDue, type ResolvedCommand, where } from './crontab.js';
import { type CheckResult, warning } from './types.js';

export function cronUnknownVariables(
  commands: readonly ResolvedCommand[],
  readFile: (file: string) => string | null,
): UnknownVariable[] {
  const found: UnknownVariable[] = [];
  for (const entry of commands) {
    if (!isSendDue(entry.command)) continue;
    const text = entry.envFile === undefined ? null : readFile(entry.envFile);
    found.push(
      ...unknownVariables({
        environment: entry.env,
        environmentSource: `the settings above ${where(entry)}`,
        envFile:
          text === null || entry.envFile === undefined
            ? null
            : { path: entry.envFile, values: parseDotenv(text) },
      }),
    );
  }
  return found;
}

/**
 * A warning naming each misspelt name once (two lines may read one env file), leaving out those
 * the `variables` check already names (doctor run with the same env file); nothing when none.
 */
export function cronVariablesCheck(
  found: readonly UnknownVariable[],
  alreadyReported: readonly UnknownVariable[],
): CheckResult[] {
  const key = (unknown: UnknownVariable) => `${unknown.name}\u0000${unknown.source}`;
  const seen = new Set(alreadyReported.map(key));
  const fresh = found.filter((unknown) => !seen.has(key(unknown)) && seen.add(key(unknown)));
  if (fresh.length === 0) return [];
  return [
    warning(
      'cron-variables',
      `Where send-due lines get their settings: ${fresh.map(describeUnknownVariable).join(' ')}`,
      'Rename each to the variable it was meant to be (or remove it): cron runs send-due without that setting.',
    ),
  ];
}
