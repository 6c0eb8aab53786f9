/** `newsletter demo`: the whole product on the embedded defaults. */
import type { Command } from 'commander';
import type { CommandActions } from '../command-actions.js';

export function registerDemo(program: Command, actions: CommandActions): void {
  program
    .command('demo')
    .description('create ./demo with a database, a list and a newsletter, and send it into ./demo/outbox')
    .option('--dir <dir>', 'where to put the demo', 'demo')
    .addHelpText(
      'after',
      '\nExamples:\n  newsletter demo\n  npm run demo          # in a checkout of the project: builds first',
    )
    .action(actions.configured(async () => (await import('../commands/demo.js')).demoCommand));
}
