/** `newsletter host [adopt]`: the host a SQLite database is bound to. */
import type { Command } from 'commander';
import type { CommandActions } from '../command-actions.js';

export function registerHost(program: Command, actions: CommandActions): void {
  const host = program
    .command('host')
    .description('show the host this database is bound to, and this host')
    .option('--json', 'print as JSON')
    .addHelpText('after', '\nExample:\n  newsletter host')
    .action(actions.configured(async () => (await import('../commands/host.js')).hostCommand));
  host
    .command('adopt')
    .description('bind the database to this host (after moving it here on purpose)')
    .option('--json', 'print as JSON')
    .addHelpText('after', '\nExample:\n  newsletter host adopt')
    .action(actions.configured(async () => (await import('../commands/host.js')).adoptCommand));
}
