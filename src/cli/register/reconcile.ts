/** `newsletter reconcile`: settle `unknown` deliveries. */
import type { Command } from 'commander';
import type { CommandActions } from '../command-actions.js';

export function registerReconcile(program: Command, actions: CommandActions): void {
  program
    .command('reconcile <id> [emails...]')
    .description(
      'settle `unknown` deliveries (and ones left `claimed` by an ended run): --mark-sent if the server logs show them delivered, else --resend',
    )
    .option('--mark-sent', 'record them as sent')
    .option('--resend', 'make them due again (same Message-ID)')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  newsletter reconcile 3 --mark-sent ada@example.org\n  newsletter reconcile 3 --resend',
    )
    .action(actions.configured(async () => (await import('../commands/reconcile.js')).reconcileCommand));
}
