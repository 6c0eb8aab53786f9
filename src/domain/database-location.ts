/**
 * Which database a setting names, and how to show it. Shared by the configuration (src/config.ts),
 * `doctor` working out what a crontab line sends from (src/doctor/crontab.ts), the CLI's messages
 * and the PostgreSQL store's errors: the store must not import the configuration to say where it
 * failed, and a password must never reach a message, a log or cron's mail.
 */

export type DatabaseTarget = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string };

/** NEWSLETTER_DATABASE when nothing sets it: a SQLite file in the folder the command runs in. */
export const DEFAULT_DATABASE = './newsletter.db';

/** A PostgreSQL connection URL rather than a file path. */
export function isPostgresUrl(value: string): boolean {
  return /^postgres(ql)?:\/\//.test(value);
}

/** The SQLite path, or the PostgreSQL URL with its password masked. */
export function describeDatabase(target: DatabaseTarget): string {
  if (target.kind === 'sqlite') return target.path;
  try {
    const url = new URL(target.url);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return 'postgres://…';
  }
}
