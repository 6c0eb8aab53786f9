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
  bounces
    .command('receive')
    .description(
      'read one message on stdin, for an MTA alias or pipe: bounces, complaints and mailto unsubscribes about our own mail count, anything else changes nothing; exit 0 when handled, 75 (EX_TEMPFAIL, the MTA retries) on any failure',
    )
    .option(
      '--recipient <address>',
      'the envelope recipient (the VERP address); default: ORIGINAL_RECIPIENT, RECIPIENT, EXTENSION or LOCAL_PART_SUFFIX as the MTA sets them',
    )
    .option('--json', 'print the counts as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  bounces: "|newsletter --env-file /etc/newsletter/site.env bounces receive"   (a line of /etc/aliases; recipient_delimiter = + in Postfix\'s main.cf)\n  newsletter bounces receive --recipient bounces+b…@example.org < report.eml',
    )
    .action(actions.configured(async () => (await import('../commands/bounces-receive.js')).receiveCommand));
  bounces
    .command('fetch')
    .description(
      'read the bounce mailbox over IMAP (NEWSLETTER_IMAP) like import, then move each message out: handled ones to NEWSLETTER_IMAP_DONE_FOLDER (newsletter-processed), the rest to NEWSLETTER_IMAP_UNMATCHED_FOLDER (newsletter-unmatched); for cron, quiet when nothing changed',
    )
    .option('--json', 'print the counts as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  NEWSLETTER_IMAP=imaps://bounces%40example.org:PASSWORD@imap.example.org/INBOX newsletter bounces fetch\n  */10 * * * * newsletter --env-file /etc/newsletter/site.env bounces fetch',
    )
    .action(actions.configured(async () => (await import('../commands/bounces-fetch.js')).fetchCommand));
}
