/** `newsletter completion bash|zsh`. */
import type { Command } from 'commander';
import type { CommandActions } from '../command-actions.js';

export function registerCompletion(program: Command, actions: CommandActions): void {
  program
    .command('completion <shell>')
    .description('print a completion script for bash or zsh')
    .addHelpText(
      'after',
      '\nExamples:\n  newsletter completion bash > /etc/bash_completion.d/newsletter\n  newsletter completion zsh > ~/.zsh/completions/_newsletter   # a folder in $fpath',
    )
    // Needs no configuration: it only describes this program.
    .action(
      actions.unconfigured(async (shell: string) => {
        const { completionScript } = await import('../commands/completion.js');
        process.stdout.write(completionScript(program, shell));
      }),
    );
}
