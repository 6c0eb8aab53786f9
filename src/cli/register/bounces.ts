/** `newsletter bounces import`: delivery status notifications. */
import type { Command } from 'commander';
import type { CommandActions } from '../command-actions.js';

export function registerBounces(program: Command, actions: CommandActions): void {
  const bounces = program
    .command('bounces')
    .description('read bounces (delivery status notifications) and suppress what they say')
    .addHelpText('after', '\nExample:\n  newsletter bounces import /var/mail/bounces');
  bounces
    .command('import <paths...>')
    .description(
      'read DSNs from an mbox, a Maildir or .eml files: hard bounces suppress, soft bounces count (NEWSLETTER_SOFT_BOUNCE_LIMIT); importing again changes nothing',
    )
    .option('--json', 'print the counts as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  newsletter bounces import /var/mail/bounces\n  newsletter bounces import ~/Maildir/.Bounces bounce-1.eml --json',
    )
    .action(actions.configured(async () => (await import('../commands/bounces.js')).importCommand));
}
