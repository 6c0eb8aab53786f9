/** `newsletter recipients import|add|remove|forget|unsubscribe|resubscribe|export|list`: the subscribers. */
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
    .option(
      '--sync',
      "with --list: the list's members become exactly the file's addresses; the others leave it (nobody is deleted, opt-outs stay)",
    )
    .option(
      '--dry-run',
      'show what would change (new, updated, joining, leaving, refused) and change nothing',
    )
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      '\nA "lists" column (as `recipients export` writes it) names lists each row joins, separated by ";".\n\nExamples:\n  newsletter recipients import subscribers.csv --list customers\n  newsletter recipients import crm.csv --list customers --sync --dry-run',
    )
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
    .description(
      'delete a subscriber (past deliveries stay in the ledger; an opt-out stays a suppression); with --list, only take them off that list',
    )
    .option('--list <name>', 'remove from this list only: the subscriber and their other lists stay')
    .addHelpText(
      'after',
      '\nExamples:\n  newsletter recipients remove ada@example.org\n  newsletter recipients remove ada@example.org --list partners',
    )
    .action(actions.configured(async () => (await import('../commands/recipients.js')).removeCommand));
  recipients
    .command('unsubscribe <email>')
    .description(
      'unsubscribe from all mail (later sends record them as skipped), or with --list from those lists only',
    )
    .option(
      '--list <name>',
      'leave this list only (repeatable); kept even if they are removed and re-imported',
      collect,
    )
    .addHelpText(
      'after',
      '\nExamples:\n  newsletter recipients unsubscribe ada@example.org\n  newsletter recipients unsubscribe ada@example.org --list partners',
    )
    .action(actions.configured(async () => (await import('../commands/recipients.js')).unsubscribeCommand));
  recipients
    .command('resubscribe <email>')
    .description(
      'clear an opt-out the person took back (all of them, or with --list those lists); records who and why',
    )
    .requiredOption('--reason <text>', 'why, for the record (e.g. "asked by phone, ticket 4411")')
    .option('--list <name>', 'only the opt-out of this list (repeatable)', collect)
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      '\nRecorded in the events table with $SUDO_USER or $USER. A bounced or suppressed address is refused: see `suppress remove`.\n\nExample:\n  newsletter recipients resubscribe ada@example.org --reason "asked by phone, ticket 4411"',
    )
    .action(
      actions.configured(
        async () => (await import('../commands/recipients-resubscribe.js')).resubscribeCommand,
      ),
    );
  recipients
    .command('export')
    .description(
      'write the subscribers as CSV (email, name, every field, lists) that `recipients import` reads back unchanged',
    )
    .option('--list <name>', 'only members of this list')
    .option('--output <file>', 'write to this new file (owner-only) instead of stdout')
    .addHelpText(
      'after',
      '\nOpt-outs and suppressions are not in the file: they stay in the database.\n\nExample:\n  newsletter recipients export --list customers --output customers.csv',
    )
    .action(actions.configured(async () => (await import('../commands/recipients-export.js')).exportCommand));
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
