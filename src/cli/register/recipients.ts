/** `newsletter recipients import|add|remove|forget|unsubscribe|list`: the subscribers. */
import type { Command } from 'commander';
import type { CommandActions } from '../command-actions.js';
import { collect } from './option-values.js';

export function registerRecipients(program: Command, actions: CommandActions): void {
  const recipients = program
    .command('recipients')
    .description('import, add, remove, unsubscribe and list subscribers')
    .addHelpText(
      'after',
      '\nExamples:\n  newsletter recipients import subscribers.csv --list customers\n  newsletter recipients list --lists',
    );
  recipients
    .command('import <file>')
    .description(
      'import a CSV with a header row: email,name,… (other columns become merge fields: "First Name" is {{first_name}})',
    )
    .option('--list <name>', 'add every imported subscriber to this list (created if needed)')
    .option('--map <column=name>', 'give a column another name, e.g. "Courriel=email" (repeatable)', collect)
    .option(
      '--skip-invalid',
      'import the valid rows and report the invalid ones (default: import nothing if any row is invalid)',
    )
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  newsletter recipients import subscribers.csv --list customers')
    .action(actions.configured(async () => (await import('../commands/recipients.js')).importCommand));
  recipients
    .command('add <email>')
    .description('add or update one subscriber')
    .option('--name <name>', 'display name (default: an existing subscriber keeps theirs)')
    .option('--list <name>', 'add to this list (repeatable)', collect)
    .option('--field <key=value>', 'a merge field (repeatable)', collect)
    .addHelpText(
      'after',
      '\nExample:\n  newsletter recipients add ada@example.org --name "Ada" --list customers --field city=London',
    )
    .action(actions.configured(async () => (await import('../commands/recipients.js')).addCommand));
  recipients
    .command('remove <email>')
    .description('delete a subscriber (past deliveries stay in the ledger; an opt-out stays a suppression)')
    .addHelpText('after', '\nExample:\n  newsletter recipients remove ada@example.org')
    .action(actions.configured(async () => (await import('../commands/recipients.js')).removeCommand));
  recipients
    .command('unsubscribe <email>')
    .description('mark a subscriber unsubscribed: later sends record them as skipped')
    .addHelpText('after', '\nExample:\n  newsletter recipients unsubscribe ada@example.org')
    .action(actions.configured(async () => (await import('../commands/recipients.js')).unsubscribeCommand));
  recipients
    .command('forget <email>')
    .description(
      "erase a person (GDPR): their data and the ledger's copies of the address; a keyed hash keeps them out of re-imports",
    )
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  newsletter recipients forget ada@example.org')
    .action(actions.configured(async () => (await import('../commands/recipients.js')).forgetCommand));
  recipients
    .command('list')
    .description('list subscribers (or, with --lists, the lists and their sizes)')
    .option('--list <name>', 'only members of this list')
    .option(
      '--lists',
      'show the lists instead: members (everyone on it) and reachable (neither unsubscribed nor suppressed)',
    )
    .option('--limit <n>', 'at most this many', '1000')
    .option('--after <id>', 'the next page: subscribers after this id (stderr names it when a page is full)')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  newsletter recipients list --list customers --json')
    .action(actions.configured(async () => (await import('../commands/recipients.js')).listCommand));
}
