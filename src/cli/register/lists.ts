/** `newsletter lists [rename|delete]`: the lists themselves (issue 14). */
import type { Command } from 'commander';
import type { CommandActions } from '../command-actions.js';

export function registerLists(program: Command, actions: CommandActions): void {
  const lists = program
    .command('lists')
    .description('show, rename or delete lists')
    .addHelpText(
      'after',
      '\nExamples:\n  newsletter lists\n  newsletter lists rename customers clients\n  newsletter lists delete old-promo',
    );
  // The default: `newsletter lists [--json]`. A subcommand, so that each command's --json is its own.
  lists
    .command('show', { isDefault: true })
    .description('the lists: members (everyone on it) and reachable (who a send would mail now)')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExamples:\n  newsletter lists\n  newsletter lists show --json')
    .action(actions.configured(async () => (await import('../commands/lists.js')).listsCommand));
  lists
    .command('rename <old> <new>')
    .description('rename a list; its newsletters, members and opt-outs follow it')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  newsletter lists rename customers clients')
    .action(actions.configured(async () => (await import('../commands/lists.js')).renameListCommand));
  lists
    .command('delete <list>')
    .description(
      'delete a list and its memberships (subscribers stay); refused while a scheduled or sending newsletter uses it',
    )
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  newsletter lists delete old-promo')
    .action(actions.configured(async () => (await import('../commands/lists.js')).deleteListCommand));
}
