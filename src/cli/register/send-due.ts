/** `newsletter send-due`: what cron runs every minute. */
import { type Command, Option } from 'commander';
import type { CommandActions } from '../command-actions.js';
import { positiveInt } from './option-values.js';

export function registerSendDue(program: Command, actions: CommandActions): void {
  program
    .command('send-due')
    .description('send whatever is due; run it from cron every minute')
    .option('--dry-run', 'build, verify and personalise everything, send nothing, write nothing')
    .option('--newsletter <id>', 'with --dry-run: check this newsletter whatever its status or time')
    .addOption(
      new Option('--max-messages <n>', 'stop claiming after this many messages').argParser(positiveInt),
    )
    .addOption(
      new Option('--max-seconds <s>', 'stop claiming after this many seconds').argParser(positiveInt),
    )
    .option('--json', 'print the run summary as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  * * * * * cd /srv/site && newsletter send-due      # crontab\n  newsletter send-due --dry-run --newsletter 3        # CI',
    )
    .action(
      actions.configured(async () => {
        const { sendDueCommand } = await import('../commands/send-due.js');
        // The only command lent main.ts's exitNow: a second signal ends the run at once.
        return (context, options: Parameters<typeof sendDueCommand>[1]) =>
          sendDueCommand(context, options, actions.exitNow);
      }),
    );
}
