/** `newsletter doctor`: every check, and what to do. */
import type { Command } from 'commander';
import type { CommandActions } from '../command-actions.js';
import type { GlobalOptions } from '../context.js';
import { collect } from './option-values.js';

export function registerDoctor(program: Command, actions: CommandActions): void {
  program
    .command('doctor')
    .description(
      'check the configuration, database, host binding, run lock, transport, cron lines and ledger; say what to do (exit 8 on a problem)',
    )
    .option('--crontab <file>', 'read this crontab instead of the system ones (repeatable)', collect)
    .option('--json', 'print every check as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  newsletter --env-file /etc/newsletter/example.org.env doctor\n  newsletter doctor --json --crontab /etc/cron.d/newsletter',
    )
    // Unconfigured: an invalid configuration is one of the doctor's findings, not a reason to stop.
    .action(
      actions.unconfigured(async (options: { json?: boolean; crontab?: string[] }, command: Command) => {
        const { doctorCommand } = await import('../commands/doctor.js');
        return doctorCommand(command.optsWithGlobals() as GlobalOptions, options);
      }),
    );
}
