/**
 * NEWSLETTER_* names that newsletter does not read, from the environment doctor runs in and the
 * env file it reads (src/config-variables.ts has the list). A warning, not a problem: nothing
 * breaks because of the name itself, but the setting it was meant to be is not in force.
 */
import { describeUnknownVariable, type UnknownVariable } from '../config-variables.js';
import { type CheckResult, ok, warning } from './types.js';

export function variablesCheck(unknown: readonly UnknownVariable[]): CheckResult {
  if (unknown.length === 0)
    return ok('variables', 'Every NEWSLETTER_* variable set is one newsletter reads.');
  return warning(
    'variables',
    unknown.map(describeUnknownVariable).join(' '),
    'Rename each to the variable it was meant to be (or remove it), in the env file or the crontab line that sets it.',
  );
}
