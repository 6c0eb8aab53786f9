/** `newsletter preview` and `test-send`: see or receive a newsletter before it goes out. */
import { type Command, Option } from 'commander';
import type { CommandActions } from '../command-actions.js';

export function registerPreview(program: Command, actions: CommandActions): void {
  program
    .command('preview <id>')
    .description('write the personalised HTML of a newsletter to a file (nothing is sent)')
    .option('--to-file <file>', 'where to write the HTML', 'preview.html')
    .option('--recipient <email>', 'personalise for this subscriber (default: the first of its lists)')
    .option('--png <file>', 'instead of HTML, write a screenshot (PNG) taken with the system Chromium')
    .addOption(
      new Option('--width <pixels>', 'with --png: 600 (desktop) or 375 (mobile)')
        .choices(['600', '375'])
        .default('600'),
    )
    .option('--chromium <path>', 'with --png: the Chromium binary (default: /usr/bin/chromium)')
    .option('--json', 'print what was written as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  newsletter preview 3 --recipient ada@example.org --to-file /tmp/preview.html\n  newsletter preview 3 --png /tmp/mobile.png --width 375',
    )
    .action(actions.configured(async () => (await import('../commands/preview.js')).previewCommand));
  program
    .command('test-send <id>')
    .description('send one copy to an address through the configured transport; never touches the ledger')
    .requiredOption('--to <email>', 'the address to send the test to')
    .option('--recipient <email>', 'personalise as this subscriber')
    .addHelpText('after', '\nExample:\n  newsletter test-send 3 --to me@example.org')
    .action(actions.configured(async () => (await import('../commands/preview.js')).testSendCommand));
}
