/** `newsletter status` and `runs`: what is due, sending, sent, and what needs a person. */
import type { Command } from 'commander';
import type { CommandActions } from '../command-actions.js';

export function registerStatus(program: Command, actions: CommandActions): void {
  program
    .command('status [id]')
    .description('what is due, sending, sent, and what needs a person')
    .option('--json', 'print as JSON')
    .option('--prometheus', 'print node_exporter\'s textfile format (see README, "Monitoring")')
    .addHelpText(
      'after',
      '\nExamples:\n  newsletter status\n  newsletter status --prometheus > "$DIR/newsletter.prom.$$" && mv "$DIR/newsletter.prom.$$" "$DIR/newsletter.prom"',
    )
    .action(actions.configured(async () => (await import('../commands/status.js')).statusCommand));
  program
    .command('runs')
    .description('every send-due run: host, pid, start, end, outcome, counts')
    .option('--limit <n>', 'at most this many, newest first', '50')
    .option('--json', 'print as JSON')
    .addHelpText('after', '\nExample:\n  newsletter runs --json')
    .action(actions.configured(async () => (await import('../commands/status.js')).runsCommand));
}
