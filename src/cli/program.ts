/**
 * The command line: the contract that crontabs and scripts rely on (DESIGN, "Command line").
 * Each command's code is imported only when it runs, so that `send-due` with nothing due loads
 * neither MJML nor nodemailer.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { type Context, createContext, type GlobalOptions } from './context.js';
import { setRedactor } from './output.js';

type Handler = (context: Context, ...args: unknown[]) => Promise<void>;

/** Wraps a lazily imported handler: config is loaded (every problem at once) before any work. */
function lazy(load: () => Promise<Handler>) {
  return async (...args: unknown[]) => {
    const command = args.at(-1) as Command;
    const global = command.optsWithGlobals() as GlobalOptions;
    const context = createContext(global);
    const { redactor } = await import('../config.js');
    setRedactor(redactor(context.config));
    const handler = await load();
    await handler(context, ...args.slice(0, -1));
  };
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function buildProgram(): Command {
  const program = new Command('newsletter')
    .description(
      'A bulk mailer for people who run servers: never twice, never silently skipped, never empty.',
    )
    .version('0.1.0')
    .option('--env-file <path>', 'read configuration from this file instead of ./.env')
    .option('--database <path>', 'the database (overrides NEWSLETTER_DATABASE)')
    .option('-v, --verbose', 'say what happened even when all went well')
    .option('-q, --quiet', 'print nothing but errors')
    .addOption(
      new Option(
        '--log-format <format>',
        'events on stderr: text, or one JSON object per line (default: text on a terminal, json otherwise)',
      ).choices(['text', 'json']),
    )
    .exitOverride()
    .showHelpAfterError('(add --help for usage)')
    .addHelpText(
      'after',
      `
Examples:
  newsletter init
  newsletter recipients import subscribers.csv --list customers
  newsletter create --subject "December news" --template templates/monthly-digest.mjml --list customers --at "2026-12-01 09:00"
  newsletter send-due            # from cron, every minute
  newsletter status`,
    );

  program
    .command('init')
    .description(
      'create the database, or migrate it to this version (safe to run again); binds it to this host',
    )
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  NEWSLETTER_DATABASE=/var/lib/newsletter/news.db newsletter init')
    .action(lazy(async () => (await import('./commands/init.js')).init as Handler));

  const recipients = program
    .command('recipients')
    .description('import, add, remove, unsubscribe and list subscribers')
    .addHelpText(
      'after',
      '\nExamples:\n  newsletter recipients import subscribers.csv --list customers\n  newsletter recipients list --lists',
    );
  recipients
    .command('import <file>')
    .description('import a CSV with a header row: email,name,… (other columns become merge fields)')
    .option('--list <name>', 'add every imported subscriber to this list (created if needed)')
    .option(
      '--skip-invalid',
      'import the valid rows and report the invalid ones (default: import nothing if any row is invalid)',
    )
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  newsletter recipients import subscribers.csv --list customers')
    .action(lazy(async () => (await import('./commands/recipients.js')).importCommand as Handler));
  recipients
    .command('add <email>')
    .description('add or update one subscriber')
    .option('--name <name>', 'display name', '')
    .option('--list <name>', 'add to this list (repeatable)', collect)
    .option('--field <key=value>', 'a merge field (repeatable)', collect)
    .addHelpText(
      'after',
      '\nExample:\n  newsletter recipients add ada@example.org --name "Ada" --list customers --field city=London',
    )
    .action(lazy(async () => (await import('./commands/recipients.js')).addCommand as Handler));
  recipients
    .command('remove <email>')
    .description('delete a subscriber (past deliveries stay in the ledger)')
    .addHelpText('after', '\nExample:\n  newsletter recipients remove ada@example.org')
    .action(lazy(async () => (await import('./commands/recipients.js')).removeCommand as Handler));
  recipients
    .command('unsubscribe <email>')
    .description('mark a subscriber unsubscribed: later sends record them as skipped')
    .addHelpText('after', '\nExample:\n  newsletter recipients unsubscribe ada@example.org')
    .action(lazy(async () => (await import('./commands/recipients.js')).unsubscribeCommand as Handler));
  recipients
    .command('list')
    .description('list subscribers (or, with --lists, the lists and their sizes)')
    .option('--list <name>', 'only members of this list')
    .option('--lists', 'show the lists instead')
    .option('--limit <n>', 'at most this many', '1000')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  newsletter recipients list --list customers --json')
    .action(lazy(async () => (await import('./commands/recipients.js')).listCommand as Handler));

  program
    .command('create')
    .description('create a newsletter from an MJML template; prints its id')
    .requiredOption('--subject <subject>', 'the subject line; may use {{fields}}')
    .requiredOption('--template <file.mjml>', 'the MJML template; includes must stay in its folder')
    .option('--list <name>', 'a list it goes to (repeatable)', collect)
    .option('--from <from>', 'From header, e.g. "News <news@example.org>" (default NEWSLETTER_FROM)')
    .option(
      '--at <when>',
      'schedule it: ISO date-time ("2026-12-01 09:00"), "now" or "+2h" (default: a draft)',
    )
    .option('--json', 'print the new newsletter as JSON')
    .addHelpText(
      'after',
      '\nExample:\n  newsletter create --subject "Hello {{name}}" --template templates/welcome.mjml --list customers --at "+1h" --json',
    )
    .action(lazy(async () => (await import('./commands/newsletters.js')).createCommand as Handler));
  program
    .command('schedule <id>')
    .description('schedule a draft (or move a scheduled newsletter)')
    .option('--at <when>', 'ISO date-time, "now" or "+2h"')
    .option('--now', 'due at once')
    .option('--json', 'print the newsletter as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  newsletter schedule 3 --at "2026-12-01 09:00"\n  newsletter schedule 3 --now',
    )
    .action(lazy(async () => (await import('./commands/newsletters.js')).scheduleCommand as Handler));
  program
    .command('cancel <id>')
    .description('cancel a draft, scheduled or sending newsletter (what was sent stays recorded)')
    .addHelpText('after', '\nExample:\n  newsletter cancel 3')
    .action(lazy(async () => (await import('./commands/newsletters.js')).cancelCommand as Handler));
  program
    .command('list')
    .description('list newsletters with their status and counts')
    .option('--json', 'print as JSON')
    .addHelpText('after', '\nExample:\n  newsletter list --json')
    .action(lazy(async () => (await import('./commands/newsletters.js')).listCommand as Handler));
  program
    .command('show <id>')
    .description('one newsletter: status, counts and deliveries that need attention')
    .option('--json', 'print as JSON (status, counts, …)')
    .addHelpText('after', '\nExample:\n  newsletter show 3 --json')
    .action(lazy(async () => (await import('./commands/newsletters.js')).showCommand as Handler));

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
    .action(lazy(async () => (await import('./commands/preview.js')).previewCommand as Handler));
  program
    .command('test-send <id>')
    .description('send one copy to an address through the configured transport; never touches the ledger')
    .requiredOption('--to <email>', 'the address to send the test to')
    .option('--recipient <email>', 'personalise as this subscriber')
    .addHelpText('after', '\nExample:\n  newsletter test-send 3 --to me@example.org')
    .action(lazy(async () => (await import('./commands/preview.js')).testSendCommand as Handler));

  program
    .command('send-due')
    .description('send whatever is due; run it from cron every minute')
    .option('--dry-run', 'build, verify and personalise everything, send nothing, write nothing')
    .option('--newsletter <id>', 'with --dry-run: check this newsletter whatever its status or time')
    .addOption(
      new Option('--max-messages <n>', 'stop claiming after this many messages').argParser(positiveInt),
    )
    .addOption(
      new Option('--max-seconds <s>', 'stop claiming after this many seconds').argParser(positiveInt),
    )
    .option('--json', 'print the run summary as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  * * * * * cd /srv/site && newsletter send-due      # crontab\n  newsletter send-due --dry-run --newsletter 3        # CI',
    )
    .action(lazy(async () => (await import('./commands/send-due.js')).sendDueCommand as Handler));

  program
    .command('status [id]')
    .description('what is due, sending, sent, and what needs a person')
    .option('--json', 'print as JSON')
    .addHelpText('after', '\nExample:\n  newsletter status')
    .action(lazy(async () => (await import('./commands/status.js')).statusCommand as Handler));
  program
    .command('runs')
    .description('every send-due run: host, pid, start, end, outcome, counts')
    .option('--limit <n>', 'at most this many, newest first', '50')
    .option('--json', 'print as JSON')
    .addHelpText('after', '\nExample:\n  newsletter runs --json')
    .action(lazy(async () => (await import('./commands/status.js')).runsCommand as Handler));
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
    .action(lazy(async () => (await import('./commands/reconcile.js')).reconcileCommand as Handler));

  program
    .command('unsubscribe <tokenOrUrl>')
    .description('unsubscribe the subscriber of a link (for sites that handle /u/TOKEN themselves)')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  newsletter unsubscribe https://example.org/newsletter/u/v1.12.3.abc')
    .action(lazy(async () => (await import('./commands/unsubscribe.js')).unsubscribeCommand as Handler));
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
    .action(lazy(async () => (await import('./commands/serve.js')).serveCommand as Handler));

  const suppress = program
    .command('suppress')
    .description('addresses never mailed again, on any list: add, remove, list, import')
    .addHelpText(
      'after',
      '\nExamples:\n  newsletter suppress add ada@example.org --reason "asked by phone"\n  newsletter suppress list',
    );
  suppress
    .command('add <emails...>')
    .description('suppress addresses (later sends record them as skipped)')
    .option('--reason <text>', 'why, shown in `suppress list` and in the skipped deliveries')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      '\nExample:\n  newsletter suppress add ada@example.org bob@example.net --reason "complained"',
    )
    .action(lazy(async () => (await import('./commands/suppress.js')).addCommand as Handler));
  suppress
    .command('remove <emails...>')
    .description('lift suppressions (their soft bounces stop counting)')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  newsletter suppress remove ada@example.org')
    .action(lazy(async () => (await import('./commands/suppress.js')).removeCommand as Handler));
  suppress
    .command('list')
    .description('the suppressed addresses, in address order, with source and reason')
    .option('--limit <n>', 'at most this many', '1000')
    .option('--after <address>', 'start after this address (paging)')
    .option('--json', 'print as JSON')
    .addHelpText('after', '\nExample:\n  newsletter suppress list --json')
    .action(lazy(async () => (await import('./commands/suppress.js')).listCommand as Handler));
  suppress
    .command('import <file>')
    .description('suppress every address of a text file (one a line) or CSV (address[,reason])')
    .option('--reason <text>', 'the reason for lines that give none')
    .option('--skip-invalid', 'import the valid lines and report the others (default: import nothing)')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      '\nExample:\n  newsletter suppress import do-not-mail.csv --reason "old unsubscribe list"',
    )
    .action(lazy(async () => (await import('./commands/suppress.js')).importCommand as Handler));

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
    .action(lazy(async () => (await import('./commands/bounces.js')).importCommand as Handler));

  const host = program
    .command('host')
    .description('show the host this database is bound to, and this host')
    .option('--json', 'print as JSON')
    .addHelpText('after', '\nExample:\n  newsletter host')
    .action(lazy(async () => (await import('./commands/host.js')).hostCommand as Handler));
  host
    .command('adopt')
    .description('bind the database to this host (after moving it here on purpose)')
    .option('--json', 'print as JSON')
    .addHelpText('after', '\nExample:\n  newsletter host adopt')
    .action(lazy(async () => (await import('./commands/host.js')).adoptCommand as Handler));

  program
    .command('migrate-db')
    .description(
      'copy this SQLite database (everything, ids kept) into an empty PostgreSQL database, and check the counts',
    )
    .requiredOption('--to <url>', 'the PostgreSQL database: postgres://user:password@host:5432/name')
    .option('--json', 'print the counts as JSON')
    .addHelpText(
      'after',
      '\nExample:\n  newsletter --database /var/lib/newsletter/news.db migrate-db --to postgres://newsletter@db.internal/newsletter',
    )
    .action(lazy(async () => (await import('./commands/migrate-db.js')).migrateDbCommand as Handler));

  program
    .command('doctor')
    .description(
      'check the configuration, database, host binding, run lock, transport, cron lines and ledger; say what to do (exit 8 on a problem)',
    )
    .option('--crontab <file>', 'read this crontab instead of the system ones (repeatable)', collect)
    .option('--json', 'print every check as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  newsletter --env-file /etc/newsletter/example.org.env doctor\n  newsletter doctor --json --crontab /etc/cron.d/newsletter',
    )
    // Not `lazy`: an invalid configuration is one of the doctor's findings, not a reason to stop.
    .action(async (options: { json?: boolean; crontab?: string[] }, command: Command) => {
      const { doctorCommand } = await import('./commands/doctor.js');
      await doctorCommand(command.optsWithGlobals() as GlobalOptions, options);
    });
  program
    .command('completion <shell>')
    .description('print a completion script for bash or zsh')
    .addHelpText(
      'after',
      '\nExamples:\n  newsletter completion bash > /etc/bash_completion.d/newsletter\n  newsletter completion zsh > ~/.zsh/completions/_newsletter   # a folder in $fpath',
    )
    // Needs no configuration: it only describes this program.
    .action(async (shell: string) => {
      const { completionScript } = await import('./commands/completion.js');
      process.stdout.write(completionScript(program, shell));
    });

  program
    .command('demo')
    .description('create ./demo with a database, a list and a newsletter, and send it into ./demo/outbox')
    .option('--dir <dir>', 'where to put the demo', 'demo')
    .addHelpText('after', '\nExample:\n  npm run demo')
    .action(lazy(async () => (await import('./commands/demo.js')).demoCommand as Handler));

  return program;
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0)
    throw new InvalidArgumentError(`"${value}" is not a whole number above 0.`);
  return n;
}
