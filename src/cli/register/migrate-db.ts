/** `newsletter migrate-db`: from SQLite to PostgreSQL. */
import type { Command } from 'commander';
import type { CommandActions } from '../command-actions.js';

export function registerMigrateDb(program: Command, actions: CommandActions): void {
  program
    .command('migrate-db')
    .description(
      'copy this SQLite database (everything, ids kept) into an empty PostgreSQL database, and check the counts',
    )
    .requiredOption('--to <url>', 'the PostgreSQL database: postgres://user:password@host:5432/name')
    .option('--json', 'print the counts as JSON')
    .addHelpText(
      'after',
      '\nExample:\n  newsletter --database /var/lib/newsletter/news.db migrate-db --to postgres://newsletter@db.internal/newsletter',
    )
    .action(actions.configured(async () => (await import('../commands/migrate-db.js')).migrateDbCommand));
}
