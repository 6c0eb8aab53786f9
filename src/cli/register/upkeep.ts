/** `newsletter backup` and `prune`: keeping a database that lives for years. */
import type { Command } from 'commander';
import type { CommandActions } from '../command-actions.js';

export function registerUpkeep(program: Command, actions: CommandActions): void {
  program
    .command('backup <file>')
    .description(
      'a consistent copy of the SQLite database while cron keeps sending (never `cp` a WAL database); PostgreSQL: use pg_dump',
    )
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  newsletter backup /var/backups/newsletter-$(date +%F).db')
    .action(actions.configured(async () => (await import('../commands/backup.js')).backupCommand));
  program
    .command('prune')
    .description(
      'delete the ledger rows of sent, cancelled or failed newsletters finished before a date; their counts, suppressions and opt-outs are kept',
    )
    .requiredOption('--sent-before <date>', 'newsletters finished before this date, e.g. 2026-01-01')
    .option('--dry-run', 'say what would be deleted, and delete nothing')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  newsletter prune --sent-before 2026-01-01 --dry-run\n  newsletter prune --sent-before 2026-01-01',
    )
    .action(actions.configured(async () => (await import('../commands/prune.js')).pruneCommand));
}
