/** `newsletter templates init DIR`: the starter templates, copied out of the package to edit. */
import type { Command } from 'commander';
import type { CommandActions } from '../command-actions.js';

export function registerTemplates(program: Command, actions: CommandActions): void {
  const templates = program
    .command('templates')
    .description('the starter MJML templates that ship with newsletter')
    .addHelpText('after', '\nExample:\n  newsletter templates init ./templates');
  templates
    .command('init <dir>')
    .description('copy the starter templates and their partials into DIR (created if needed), to edit there')
    .option('--force', 'replace starter files that already exist in DIR (other files are left alone)')
    .addHelpText(
      'after',
      '\nExamples:\n  newsletter templates init ./templates\n  newsletter create --subject "Hello {{name}}" --template templates/welcome.mjml --list customers',
    )
    // Needs no configuration: it only copies files out of the package.
    .action(
      actions.unconfigured(async (dir: string, options: { force?: boolean }) => {
        const { templatesInitCommand } = await import('../commands/templates.js');
        await templatesInitCommand(dir, options);
      }),
    );
}
