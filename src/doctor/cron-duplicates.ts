/**
 * Duplicated send-due lines that the `cron` check (crontab.ts) does not already report: those for
 * another database of this host, and those whose database could not be worked out at all. Two
 * identical lines run the same thing every minute whatever database it turns out to be, so they
 * are duplicates even when doctor cannot say which database that is; duplicated cron lines are
 * how the duplicates of the mailer this project replaces began.
 */
import { isSendDue, type ResolvedCommand, where } from './crontab.js';
import { type CheckResult, warning } from './types.js';

/**
 * What makes two lines run the same thing: the command as written (spacing aside), as the same
 * user, from the same folder (a unit's WorkingDirectory=), with the same NEWSLETTER_* settings
 * above it. MAILTO, PATH and the schedule do not change which database is used.
 */
function sameRunKey(entry: ResolvedCommand): string {
  const settings = Object.entries(entry.env)
    .filter(([name]) => name.startsWith('NEWSLETTER_'))
    .sort(([a], [b]) => a.localeCompare(b));
  return JSON.stringify([entry.user, entry.cwd, entry.command.replace(/\s+/g, ' ').trim(), settings]);
}

/**
 * One warning listing every group of duplicated send-due lines that are not for `database`
 * (those are the `cron` check's), or nothing when there is none.
 */
export function otherDuplicatesCheck(
  commands: readonly ResolvedCommand[],
  database: string,
  sameDatabase: (a: string, b: string) => boolean = (a, b) => a === b,
): CheckResult[] {
  const groups = new Map<string, ResolvedCommand[]>();
  for (const entry of commands) {
    if (!isSendDue(entry.command)) continue;
    if (entry.database !== null && sameDatabase(entry.database, database)) continue;
    const key = entry.database !== null ? `database:${entry.database}` : `line:${sameRunKey(entry)}`;
    groups.set(key, [...(groups.get(key) ?? []), entry]);
  }
  const duplicated = [...groups.values()].filter((group) => group.length > 1);
  if (duplicated.length === 0) return [];
  const described = duplicated.map((group) => {
    const first = group[0] as ResolvedCommand;
    const what =
      first.database !== null
        ? `send-due for ${first.database}`
        : `the identical line \`${first.command}\` (its database could not be worked out: ${first.unresolved ?? 'unknown'})`;
    return `${what} appears ${group.length} times: ${group.map(where).join(', ')}`;
  });
  return [
    warning(
      'cron-duplicates',
      `${described.join('; ')}. Every extra line starts another run each minute; the run lock and the ledger keep that from sending twice, but duplicated cron lines are how the duplicates of the mailer this replaces began.`,
      'Keep exactly one line per database: remove the others (`crontab -e`, or the file in /etc/cron.d).',
    ),
  ];
}
