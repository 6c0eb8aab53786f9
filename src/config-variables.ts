/**
 * The NEWSLETTER_* variables newsletter reads: the one list. src/config.ts reads settings only
 * by these names (its `get` takes a ConfigVariable, so a new setting must be added here or it does
 * not compile), and anything else that starts with NEWSLETTER_ is a misspelling to warn about:
 * `NEWSLETTER_FORM=…` would otherwise be ignored without a word, and the From address silently
 * be the default.
 */
import { closestName } from './domain/closest-name.js';

export const CONFIG_VARIABLES = [
  'NEWSLETTER_DATABASE',
  'NEWSLETTER_TRANSPORT',
  'NEWSLETTER_FROM',
  'NEWSLETTER_REPLY_TO',
  'NEWSLETTER_BASE_URL',
  'NEWSLETTER_SECRET',
  'NEWSLETTER_SECRET_PREVIOUS',
  'NEWSLETTER_SECRET_PREVIOUS_UNTIL',
  'NEWSLETTER_UNSUBSCRIBE_PAGE',
  'NEWSLETTER_DKIM_KEY',
  'NEWSLETTER_DKIM_SELECTOR',
  'NEWSLETTER_DKIM_DOMAIN',
  'NEWSLETTER_SOFT_BOUNCE_LIMIT',
  'NEWSLETTER_RETURN_PATH',
  'NEWSLETTER_RETURN_PATH_DELIMITER',
  'NEWSLETTER_RATE',
  'NEWSLETTER_HOURLY_LIMIT',
  'NEWSLETTER_QUOTA_ACCOUNT',
  'NEWSLETTER_RETRY_AFTER',
  'NEWSLETTER_LEASE',
  'NEWSLETTER_HOST_ID',
  'NEWSLETTER_BATCH',
  'NEWSLETTER_SMTP_CONNECTIONS',
  'NEWSLETTER_SMTP_TIMEOUT',
  'NEWSLETTER_SMTP_TLS',
  'NEWSLETTER_SMTP_CA',
  'NEWSLETTER_BUSY_TIMEOUT',
  'NEWSLETTER_LOCK_DIR',
  'NEWSLETTER_LOCK_STALE',
  'NEWSLETTER_IMAP',
  'NEWSLETTER_IMAP_DONE_FOLDER',
  'NEWSLETTER_IMAP_UNMATCHED_FOLDER',
  'NEWSLETTER_IMAP_CA',
] as const;

/** A variable the configuration reads (through settingOf: env file, environment, flags). */
export type ConfigVariable = (typeof CONFIG_VARIABLES)[number];

/**
 * Read from the environment alone by one command or by the tests, never from the env file:
 * known, so never warned about.
 */
const OTHER_VARIABLES = [
  // `migrate-db`'s target (src/cli/migrate-target.ts): kept out of env files on purpose.
  'NEWSLETTER_MIGRATE_TO',
  // The end-to-end tests' stopping points (src/cli/failpoints.ts).
  'NEWSLETTER_FAILPOINTS',
] as const;

export const KNOWN_VARIABLES: readonly string[] = [...CONFIG_VARIABLES, ...OTHER_VARIABLES];

export interface UnknownVariable {
  name: string;
  /** `the environment`, or the env file's path. */
  source: string;
  /** The known variable it is probably a misspelling of, or null. */
  suggestion: string | null;
}

/**
 * Every NEWSLETTER_* name (any case: `newsletter_from` is ignored just the same) set in the
 * environment or the env file that newsletter does not read, each with its likely intent.
 */
export function unknownVariables(sources: {
  environment: Readonly<Record<string, string | undefined>>;
  /** How to name where the environment came from; `the environment` unless told. */
  environmentSource?: string;
  envFile: { path: string; values: Readonly<Record<string, string>> } | null;
}): UnknownVariable[] {
  const found: UnknownVariable[] = [];
  const look = (names: Iterable<string>, source: string) => {
    for (const name of names) {
      if (!/^NEWSLETTER_/i.test(name) || KNOWN_VARIABLES.includes(name)) continue;
      found.push({ name, source, suggestion: closestName(name, KNOWN_VARIABLES, 'NEWSLETTER_') });
    }
  };
  look(Object.keys(sources.environment).sort(), sources.environmentSource ?? 'the environment');
  if (sources.envFile) look(Object.keys(sources.envFile.values), sources.envFile.path);
  return found;
}

/** One sentence for a person: what was found, where, and what it probably should be. */
export function describeUnknownVariable(unknown: UnknownVariable): string {
  const hint = unknown.suggestion
    ? `did you mean ${unknown.suggestion}?`
    : 'see the configuration table in the README for the names newsletter reads.';
  return `${unknown.name} (in ${unknown.source}) is not a newsletter setting and is ignored: ${hint}`;
}
