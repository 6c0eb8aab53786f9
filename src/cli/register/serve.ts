/** `newsletter serve`: the HTTP end of the unsubscribe links. */
import type { Command } from 'commander';
import type { CommandActions } from '../command-actions.js';

export function registerServe(program: Command, actions: CommandActions): void {
  program
    .command('serve')
    .description(
      'answer unsubscribe links: one-click POST (RFC 8058) and a confirmation page, behind your reverse proxy',
    )
    .option('--port <port>', 'TCP port (0 picks a free one)', '8080')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .addHelpText(
      'after',
      '\nExamples:\n  newsletter serve                       # http://127.0.0.1:8080/u/TOKEN\n  newsletter serve --port 8025 --host ::1',
    )
    .action(actions.configured(async () => (await import('../commands/serve.js')).serveCommand));
}
