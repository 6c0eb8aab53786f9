/**
 * The entry point, and the only place that sets the process's exit code or ends it: commands
 * return their exit code (src/cli/command-actions.ts), errors become one here, and `exitNow` below
 * is the single way out before a command returns. The crontab's idle `send-due` never gets
 * here: bin/newsletter.js answers it first from one bundled file (src/cli/idle.ts, built into
 * dist/cli/idle-bundle.cjs), and imports this module only when that quick path says no.
 */
import { NewsletterError } from '../domain/errors.js';
import { ExitCode, type ExitCodeValue } from '../domain/exit-codes.js';

async function main(argv: string[]): Promise<number> {
  endQuietlyWhenTheReaderIsGone();
  const receiving = isBouncesReceive(argv.slice(2));
  if (receiving) tempFailOnCrash();
  let code: number;
  try {
    const { runProgram } = await import('./program.js');
    code = await runProgram(argv, exitNow);
  } catch (error) {
    code = await exitCodeFor(error);
  }
  // An MTA bounces (loses) a message whose pipe exits with anything but 0 or EX_TEMPFAIL: every
  // failure of `bounces receive` (busy database, bad configuration, a bug) must keep it queued.
  return receiving && code !== ExitCode.ok ? ExitCode.tempFail : code;
}

/** `[global options] bounces receive …`: the one command an MTA runs. */
function isBouncesReceive(args: readonly string[]): boolean {
  const at = args.indexOf('bounces');
  return at !== -1 && args[at + 1] === 'receive';
}

/** A crash outside the awaited path (a stray rejection, an exception in a callback) exits 75 too. */
function tempFailOnCrash(): void {
  const fail = (error: unknown): void => {
    process.stderr.write(`newsletter bounces receive: ${(error as Error)?.stack ?? String(error)}\n`);
    process.exit(ExitCode.tempFail);
  };
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);
}

/**
 * Ends the process now, lent to `send-due` for a second SIGTERM/SIGINT: the operator means it, and
 * the messages in flight are not waited for (the next run holds what this one claimed as
 * `unknown`). Nothing is flushed or closed on purpose: that is what the first signal is for.
 */
function exitNow(code: ExitCodeValue): never {
  process.exit(code);
}

/**
 * `newsletter recipients list | head -1`: once `head` has its line it closes the pipe, and the
 * next write to stdout fails with EPIPE. The reader has what it asked for, so that is a success:
 * end at once, quietly, with 0 (without a listener Node would crash with exit 1, which the README
 * defines as a bug). Whatever a command was doing can only have been printing by then: every
 * command writes its result last. A closed stderr is ignored instead, so the exit code still says
 * how the command went.
 */
function endQuietlyWhenTheReaderIsGone(): void {
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(ExitCode.ok);
    throw error;
  });
  process.stderr.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
  });
}

async function exitCodeFor(error: unknown): Promise<number> {
  const [{ CommanderError }, { printError }] = await Promise.all([
    import('commander'),
    import('./output.js'),
  ]);
  if (error instanceof CommanderError) {
    // Help and version are successes; commander already printed its own message otherwise.
    if (
      error.code === 'commander.helpDisplayed' ||
      error.code === 'commander.version' ||
      error.code === 'commander.help'
    ) {
      return ExitCode.ok;
    }
    return ExitCode.usage;
  }
  if (error instanceof NewsletterError) {
    printError(error.message, error.details);
    return error.exitCode;
  }
  const code = (error as { code?: string }).code;
  if (typeof code === 'string' && code.startsWith('SQLITE_')) {
    printError(`The database failed: ${(error as Error).message} (${code}).`, [
      'If another program is writing to it, try again; `newsletter doctor` checks the database.',
    ]);
    return ExitCode.database;
  }
  printError(`Unexpected failure: ${(error as Error)?.stack ?? String(error)}`, [
    'This is a bug in newsletter; please report it with the command you ran.',
  ]);
  return ExitCode.internal;
}

const code = await main(process.argv);
// Flush stdout/stderr before leaving: cron pipes them, and a pipe write may still be pending.
process.exitCode = code;
// If a library left a handle open (a socket, a timer), do not let it keep cron's process alive.
setTimeout(() => process.exit(code), 2000).unref();
