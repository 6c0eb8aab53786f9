/**
 * The command line: the contract that crontabs and scripts rely on (DESIGN, "Command line").
 * This file holds the global options and the order of the commands in --help; each command group
 * registers itself from src/cli/register/, and each command's code is imported only when it runs
 * (src/cli/command-actions.ts), so that `send-due` with nothing due loads neither MJML nor
 * nodemailer.
 */
import { Command, Option } from 'commander';
import type { ExitCodeValue } from '../domain/exit-codes.js';
import { CommandActions, type ExitNow } from './command-actions.js';
import { registerBounces } from './register/bounces.js';
import { registerCompletion } from './register/completion.js';
import { registerDemo } from './register/demo.js';
import { registerDoctor } from './register/doctor.js';
import { registerHost } from './register/host.js';
import { registerInit } from './register/init.js';
import { registerLists } from './register/lists.js';
import { registerMigrateDb } from './register/migrate-db.js';
import { registerNewsletterLife } from './register/newsletter-life.js';
import { registerNewsletters } from './register/newsletters.js';
import { registerPreview } from './register/preview.js';
import { registerReconcile } from './register/reconcile.js';
import { registerRecipients } from './register/recipients.js';
import { registerSendDue } from './register/send-due.js';
import { registerServe } from './register/serve.js';
import { registerStatus } from './register/status.js';
import { registerSuppress } from './register/suppress.js';
import { registerTemplates } from './register/templates.js';
import { registerUnsubscribe } from './register/unsubscribe.js';
import { registerUpkeep } from './register/upkeep.js';

/**
 * Runs the command `argv` names and returns its exit code; main.ts sets it on the process.
 * Throws what the command throws (main.ts maps errors to exit codes).
 */
export async function runProgram(argv: readonly string[], exitNow: ExitNow): Promise<ExitCodeValue> {
  const actions = new CommandActions(exitNow);
  await buildProgram(actions).parseAsync(argv);
  return actions.exitCode;
}

/** Without `actions`, a program to inspect (help, completion tests), not to run send-due with. */
export function buildProgram(actions = new CommandActions(notLent)): Command {
  const program = new Command('newsletter')
    .description(
      'A bulk mailer for people who run servers: never twice, never silently skipped, never empty.',
    )
    .version('0.1.0')
    .option('--env-file <path>', 'read configuration from this file instead of ./.env')
    .option('--database <path>', 'the database (overrides NEWSLETTER_DATABASE)')
    .option('-v, --verbose', 'say what happened even when all went well')
    .option('-q, --quiet', 'print nothing but errors')
    .addOption(
      new Option(
        '--log-format <format>',
        'events on stderr: text, or one JSON object per line (default: json under systemd, text otherwise)',
      ).choices(['text', 'json']),
    )
    .exitOverride()
    .showHelpAfterError('(add --help for usage)')
    .addHelpText(
      'after',
      `
Examples:
  newsletter init
  newsletter recipients import subscribers.csv --list customers
  newsletter create --subject "December news" --template templates/monthly-digest.mjml --list customers --at "2026-12-01 09:00"
  newsletter send-due            # from cron, every minute
  newsletter status`,
    );

  // In the order --help lists them.
  for (const register of [
    registerInit,
    registerRecipients,
    registerLists,
    registerTemplates,
    registerNewsletters,
    registerNewsletterLife,
    registerPreview,
    registerSendDue,
    registerStatus,
    registerReconcile,
    registerUnsubscribe,
    registerServe,
    registerSuppress,
    registerBounces,
    registerHost,
    registerMigrateDb,
    registerUpkeep,
    registerDoctor,
    registerCompletion,
    registerDemo,
  ]) {
    register(program, actions);
  }
  return program;
}

function notLent(): never {
  throw new Error("exitNow is main.ts's: run the program through runProgram to end the process early.");
}
