/** `newsletter init`: create or migrate the database. */
import type { Command } from 'commander';
import type { CommandActions } from '../command-actions.js';

export function registerInit(program: Command, actions: CommandActions): void {
  program
    .command('init')
    .description(
      'create the database, or migrate it to this version (safe to run again); binds it to this host',
    )
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  NEWSLETTER_DATABASE=/var/lib/newsletter/news.db newsletter init')
    .action(actions.configured(async () => (await import('../commands/init.js')).init));
}
