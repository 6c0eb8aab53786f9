/** `newsletter migrate-db`: from SQLite to PostgreSQL. */
import type { Command } from 'commander';
import type { CommandActions } from '../command-actions.js';

export function registerMigrateDb(program: Command, actions: CommandActions): void {
  program
    .command('migrate-db')
    .description(
      'copy this SQLite database (everything, ids kept) into an empty PostgreSQL database, and check the counts',
    )
    .option(
      '--to-file <path>',
      'read the PostgreSQL URL (postgres://user:password@host:5432/name) from this file',
    )
    .option(
      '--to <url>',
      'the PostgreSQL URL, only without a password (PGPASSWORD or ~/.pgpass supply it): argv is visible to every local user',
    )
    .option('--json', 'print the counts as JSON')
    .addHelpText(
      'after',
      [
        '',
        'The target, in one of three ways (a password never goes on the command line, where `ps` shows it):',
        '  NEWSLETTER_MIGRATE_TO=postgres://user:password@host/name   in the environment',
        '  --to-file PATH                                              a file holding the URL (chmod 600)',
        '  --to postgres://user@host/name                              only without a password',
        '',
        'Example:',
        '  read -rs NEWSLETTER_MIGRATE_TO && export NEWSLETTER_MIGRATE_TO',
        '  newsletter --database /var/lib/newsletter/news.db migrate-db',
      ].join('\n'),
    )
    .action(actions.configured(async () => (await import('../commands/migrate-db.js')).migrateDbCommand));
}
