/** `newsletter unsubscribe TOKEN|URL`: for sites that handle unsubscribe links themselves. */
import type { Command } from 'commander';
import type { CommandActions } from '../command-actions.js';

export function registerUnsubscribe(program: Command, actions: CommandActions): void {
  program
    .command('unsubscribe <tokenOrUrl>')
    .description('unsubscribe the subscriber of a link (for sites that handle /u/TOKEN themselves)')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  newsletter unsubscribe https://example.org/newsletter/u/v1.12.3.abc')
    .action(actions.configured(async () => (await import('../commands/unsubscribe.js')).unsubscribeCommand));
}
