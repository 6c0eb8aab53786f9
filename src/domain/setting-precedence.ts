/**
 * Where a setting comes from (DESIGN, "Configuration"): the env file, then the environment, then
 * flags, each overriding the one before. One rule, used by the configuration (src/config.ts) and by
 * `doctor` when it works out which database a crontab line would use (src/doctor/crontab.ts): if
 * they decided differently, doctor would check a database the cron line never touches.
 */

export interface SettingSources {
  /**
   * The lowest: the values of the env file (`--env-file`, or `.env` where the command runs), or
   * null when there is none. Called only when neither a flag nor the environment sets the
   * variable, so that doctor reads a crontab line's env file only when it matters.
   */
  envFile: () => Readonly<Record<string, string>> | null;
  /** The process environment (or what a crontab line sets before the command). */
  environment: Readonly<Record<string, string | undefined>>;
  /** The highest: command-line flags, by the variable each stands for (`--database`: NEWSLETTER_DATABASE). */
  flags: Readonly<Record<string, string | undefined>>;
}

/**
 * The value of one NEWSLETTER_* variable, trimmed; null when it is empty or set nowhere, so that
 * its default applies. An empty flag is no flag. A variable set in the environment, even to
 * nothing, hides the env file's value: `NEWSLETTER_X= newsletter …` means "not X", as it reads.
 */
export function settingOf(sources: SettingSources, name: string): string | null {
  const flag = sources.flags[name];
  const environment = sources.environment[name];
  const value = flag ? flag : environment !== undefined ? environment : sources.envFile()?.[name];
  return value?.trim() || null;
}
