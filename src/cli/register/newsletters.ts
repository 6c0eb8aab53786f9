/** `newsletter create|schedule|cancel|list|show`: the newsletters themselves. */
import type { Command } from 'commander';
import type { CommandActions } from '../command-actions.js';
import { collect } from './option-values.js';

export function registerNewsletters(program: Command, actions: CommandActions): void {
  program
    .command('create')
    .description('create a newsletter from an MJML template; prints its id')
    .requiredOption('--subject <subject>', 'the subject line; may use {{fields}}')
    .requiredOption('--template <file.mjml>', 'the MJML template; includes must stay in its folder')
    .option('--list <name>', 'a list it goes to (repeatable)', collect)
    .option('--from <from>', 'From header, e.g. "News <news@example.org>" (default NEWSLETTER_FROM)')
    .option(
      '--at <when>',
      'schedule it: "2026-12-01 09:00" (TZ), "2026-12-24 09:00 Europe/Paris", "2026-12-01T09:00+01:00", "now" or "+2h" (default: a draft); a past time is refused',
    )
    .option('--now', 'schedule it due at once')
    .option(
      '--where <FIELD=VALUE>',
      'send only to recipients whose field equals VALUE (or FIELD!=VALUE: differs); repeatable, all must hold',
      collect,
    )
    .option('--exclude-list <name>', 'leave out the members of this list (repeatable)', collect)
    .option('--json', 'print the new newsletter as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  newsletter create --subject "Hello {{name}}" --template templates/welcome.mjml --list customers --at "+1h" --json' +
        '\n  newsletter create --subject "Meet-ups in Paris" --template templates/monthly-digest.mjml --list customers \\\n' +
        '      --where city=Paris --where "plan!=free" --exclude-list staff',
    )
    .action(actions.configured(async () => (await import('../commands/newsletters.js')).createCommand));
  program
    .command('schedule <id>')
    .description('schedule a draft, move a scheduled newsletter, or schedule a failed one again once fixed')
    .option(
      '--at <when>',
      '"2026-12-01 09:00", "2026-12-24 09:00 Europe/Paris", ISO with an offset, "now" or "+2h"',
    )
    .option('--now', 'due at once')
    .option('--json', 'print the newsletter as JSON')
    .addHelpText(
      'after',
      '\nThe build is checked again first (a failed newsletter: fix it with edit --template, then schedule).\n\nExamples:\n  newsletter schedule 3 --at "2026-12-24 09:00 Europe/Paris"\n  newsletter schedule 3 --now',
    )
    .action(actions.configured(async () => (await import('../commands/newsletters.js')).scheduleCommand));
  program
    .command('cancel <id>')
    .description('cancel a draft, scheduled or sending newsletter (what was sent stays recorded)')
    .addHelpText('after', '\nExample:\n  newsletter cancel 3')
    .action(actions.configured(async () => (await import('../commands/newsletters.js')).cancelCommand));
  program
    .command('list')
    .description('list newsletters with their status and counts')
    .option('--json', 'print as JSON')
    .addHelpText('after', '\nExample:\n  newsletter list --json')
    .action(actions.configured(async () => (await import('../commands/newsletters.js')).listCommand));
  program
    .command('show <id>')
    .description('one newsletter: status, counts and deliveries that need attention')
    .option('--json', 'print as JSON (status, counts, …)')
    .addHelpText('after', '\nExample:\n  newsletter show 3 --json')
    .action(actions.configured(async () => (await import('../commands/newsletters.js')).showCommand));
}
