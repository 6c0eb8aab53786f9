/** `newsletter suppress add|remove|list|import`: addresses never mailed again. */
import type { Command } from 'commander';
import type { CommandActions } from '../command-actions.js';

export function registerSuppress(program: Command, actions: CommandActions): void {
  const suppress = program
    .command('suppress')
    .description('addresses never mailed again, on any list: add, remove, list, import')
    .addHelpText(
      'after',
      '\nExamples:\n  newsletter suppress add ada@example.org --reason "asked by phone"\n  newsletter suppress list',
    );
  suppress
    .command('add <emails...>')
    .description('suppress addresses (later sends record them as skipped)')
    .option('--reason <text>', 'why, shown in `suppress list` and in the skipped deliveries')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      '\nExample:\n  newsletter suppress add ada@example.org bob@example.net --reason "complained"',
    )
    .action(actions.configured(async () => (await import('../commands/suppress.js')).addCommand));
  suppress
    .command('remove <emails...>')
    .description('lift suppressions (their soft bounces stop counting)')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  newsletter suppress remove ada@example.org')
    .action(actions.configured(async () => (await import('../commands/suppress.js')).removeCommand));
  suppress
    .command('list')
    .description('the suppressed addresses, in address order, with source and reason')
    .option('--limit <n>', 'at most this many', '1000')
    .option('--after <address>', 'start after this address (paging)')
    .option('--json', 'print as JSON')
    .addHelpText('after', '\nExample:\n  newsletter suppress list --json')
    .action(actions.configured(async () => (await import('../commands/suppress.js')).listCommand));
  suppress
    .command('import <file>')
    .description('suppress every address of a text file (one a line) or CSV (address[,reason])')
    .option('--reason <text>', 'the reason for lines that give none')
    .option('--skip-invalid', 'import the valid lines and report the others (default: import nothing)')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      '\nExample:\n  newsletter suppress import do-not-mail.csv --reason "old unsubscribe list"',
    )
    .action(actions.configured(async () => (await import('../commands/suppress.js')).importCommand));
}
