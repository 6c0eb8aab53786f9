/**
 * How every command's action runs (the registrations in src/cli/register/ wrap each one here):
 *
 * - its module is imported only when it runs, so that `send-due` with work to do loads the engine
 *   but `recipients list` does not, and nothing loads MJML or nodemailer that does not send;
 * - the configuration is loaded first, every problem at once, and the redactor set from it before
 *   anything can print a secret;
 * - what it returns is its exit code, kept here for main.ts: commands never set the process's
 *   exit code themselves, so that one place (main.ts) decides how the process ends.
 */
import type { Command } from 'commander';
import { ExitCode, type ExitCodeValue } from '../domain/exit-codes.js';
import { type Context, createContext, type GlobalOptions } from './context.js';
import { setRedactor } from './output.js';

/**
 * What a command returns: its exit code (README, "Exit codes"), or nothing for 0. Most commands
 * only ever exit 0 and are declared `Promise<void>`; they need not say so.
 */
// biome-ignore lint/suspicious/noConfusingVoidType: `void` is what those commands are declared to return
export type CommandResult = Promise<ExitCodeValue | undefined | void>;

/** A command that needs the configuration: the context, then commander's arguments and options. */
export type CommandHandler<Args extends unknown[]> = (context: Context, ...args: Args) => CommandResult;

/**
 * Ends the process at once with `code`, before the command returns. main.ts owns it and lends it
 * to the one command that needs it: a second SIGTERM/SIGINT during `send-due` means "stop now",
 * and the messages in flight cannot be waited for.
 */
export type ExitNow = (code: ExitCodeValue) => never;

export class CommandActions {
  private code: ExitCodeValue = ExitCode.ok;

  constructor(readonly exitNow: ExitNow) {}

  /** The exit code the command returned; 0 when it returned none, or when none ran (--help). */
  get exitCode(): ExitCodeValue {
    return this.code;
  }

  /** The action of a command that needs the configuration; `load` imports its module. */
  configured<Args extends unknown[]>(
    load: () => Promise<CommandHandler<Args>>,
  ): (...args: [...Args, Command]) => Promise<void> {
    return async (...args) => {
      const command = args.at(-1) as Command;
      const context = createContext(command.optsWithGlobals() as GlobalOptions);
      const { redactor } = await import('../config.js');
      setRedactor(redactor(context.config));
      const handler = await load();
      this.settle(await handler(context, ...(args.slice(0, -1) as Args)));
    };
  }

  /**
   * The action of a command that loads no configuration first: `doctor` (an invalid one is one
   * of its findings) and `completion` (it only describes the program).
   */
  unconfigured<Args extends unknown[]>(
    run: (...args: Args) => CommandResult,
  ): (...args: Args) => Promise<void> {
    return async (...args) => this.settle(await run(...args));
  }

  private settle(code: Awaited<CommandResult>): void {
    this.code = code ?? ExitCode.ok;
  }
}
