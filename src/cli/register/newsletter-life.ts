/** `newsletter edit|copy|delete`: a newsletter's life after `create` (src/cli/commands/newsletter-life.ts). */
import type { Command } from 'commander';
import type { CommandActions } from '../command-actions.js';
import { collect } from './option-values.js';

export function registerNewsletterLife(program: Command, actions: CommandActions): void {
  program
    .command('edit <id>')
    .description(
      "change a draft, scheduled or failed newsletter; create's checks run again, nothing changes if one fails",
    )
    .option('--subject <subject>', 'the new subject line')
    .option('--template <file.mjml>', 'the new template: it and its includes are read and stored now')
    .option('--list <name>', 'the lists it goes to, replacing the old ones (repeatable)', collect)
    .option('--from <from>', 'the new From header')
    .option(
      '--where <FIELD=VALUE>',
      'a new segment, replacing the stored one: FIELD=VALUE or FIELD!=VALUE (repeatable, all must hold)',
      collect,
    )
    .option(
      '--exclude-list <name>',
      'a new segment leaving out this list (repeatable; replaces the stored one)',
      collect,
    )
    .option('--no-segment', 'remove the segment: send to the whole lists')
    .option('--json', 'print the newsletter as JSON')
    .addHelpText(
      'after',
      '\nA send uses the template as stored by create or edit, never the file on disk again:\nafter changing the file, run edit --template again (show and preview name the stored version).\n\nExamples:\n  newsletter edit 3 --template templates/welcome.mjml\n  newsletter edit 3 --subject "Our December news" --list customers --list partners',
    )
    .action(actions.configured(async () => (await import('../commands/newsletter-life.js')).editCommand));
  program
    .command('copy <id>')
    .description(
      'make a new draft from a newsletter (its stored template, subject, From and lists); prints its id',
    )
    .option('--json', 'print the new draft as JSON')
    .addHelpText('after', '\nExample:\n  newsletter copy 3 && newsletter edit 4 --subject "Reminder"')
    .action(actions.configured(async () => (await import('../commands/newsletter-life.js')).copyCommand));
  program
    .command('delete <id>')
    .description('delete a draft, failed or cancelled newsletter from which nothing was sent')
    .option('--json', 'print what was deleted as JSON')
    .addHelpText('after', '\nExample:\n  newsletter delete 3')
    .action(actions.configured(async () => (await import('../commands/newsletter-life.js')).deleteCommand));
}
