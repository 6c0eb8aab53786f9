/**
 * The built CLI (`node bin/newsletter.js`) as a child process, the way cron starts it: no stdin,
 * stdout and stderr piped (not a terminal), a clean environment chosen by the test.
 *
 * Every child has a hard timeout that SIGKILLs it, and every child is registered so that
 * `reapChildren()` (in afterEach) can kill whatever a test left behind and fail that test: a
 * stopped (SIGSTOP) or hung child must never outlive its test or keep vitest waiting.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/newsletter.js');

const DEFAULT_TIMEOUT_MS = 30_000;

export interface CliResult {
  /** The exit code; null when the process was ended by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** True when the hard timeout killed it. */
  timedOut: boolean;
}

export interface CliOptions {
  cwd: string;
  /** The whole environment of the child: nothing is inherited. */
  env: Record<string, string>;
  /** SIGKILL after this long. Default 30 s. */
  timeoutMs?: number;
}

export interface CliProcess {
  readonly pid: number;
  readonly args: readonly string[];
  /** Resolves when the process has exited and been reaped (never rejects). */
  readonly exited: Promise<CliResult>;
  stdout(): string;
  stderr(): string;
  /** Not yet exited (it may be stopped). */
  running(): boolean;
  /** Sends a signal if the process is still there. */
  signal(signal: NodeJS.Signals): void;
  /**
   * Resolves once stderr contains `text`; rejects if the process exits first or after
   * `timeoutMs`. Used with failpoints: `failpoint:after-claim` means "stopped right there".
   */
  waitForStderr(text: string, timeoutMs?: number): Promise<void>;
  /**
   * Resolves once the run has printed `failpoint:NAME` AND is really stopped. The failpoint
   * prints before it stops itself, so a SIGCONT sent on the line alone can arrive first, be
   * lost, and leave the child stopped for ever (seen under load on two cores).
   */
  waitForFailpoint(name: string, timeoutMs?: number): Promise<void>;
}

const live = new Set<CliProcess>();

export function startCli(args: readonly string[], options: CliOptions): CliProcess {
  const child: ChildProcess = spawn(process.execPath, [CLI, ...args], {
    cwd: options.cwd,
    env: options.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`could not start ${CLI}`);
  let stdout = '';
  let stderr = '';
  let timedOut = false;
  const stderrListeners = new Set<() => void>();
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
    for (const listener of stderrListeners) listener();
  });

  let done = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  // 'close' (not 'exit'): the pipes are drained, so stdout and stderr are complete.
  const exited = new Promise<CliResult>((resolve) => {
    child.once('close', (code, signal) => {
      done = true;
      clearTimeout(timer);
      live.delete(handle);
      for (const listener of stderrListeners) listener();
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });

  const handle: CliProcess = {
    pid: child.pid,
    args,
    exited,
    stdout: () => stdout,
    stderr: () => stderr,
    running: () => !done && child.exitCode === null && child.signalCode === null,
    signal(signal) {
      if (handle.running()) child.kill(signal);
    },
    waitForStderr(text, timeoutMs = 20_000) {
      return new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (stderr.includes(text)) finish(null);
          else if (done)
            finish(new Error(`${describe(handle)} exited before printing "${text}"; stderr:\n${stderr}`));
        };
        const limit = setTimeout(
          () => finish(new Error(`${describe(handle)} did not print "${text}" within ${timeoutMs} ms`)),
          timeoutMs,
        );
        const finish = (error: Error | null): void => {
          clearTimeout(limit);
          stderrListeners.delete(check);
          if (error) reject(error);
          else resolve();
        };
        stderrListeners.add(check);
        check();
      });
    },
    async waitForFailpoint(name, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      await handle.waitForStderr(`failpoint:${name}`, timeoutMs);
      while (!isStopped(handle.pid)) {
        if (!handle.running()) throw new Error(`${describe(handle)} exited at failpoint ${name}`);
        if (Date.now() > deadline) throw new Error(`${describe(handle)} did not stop at failpoint ${name}`);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    },
  };
  live.add(handle);
  return handle;
}

/** Whether a process is stopped (SIGSTOP): /proc on Linux, ps elsewhere. */
function isStopped(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) S …": the name may hold spaces or parentheses, the state follows the last ")".
    return /^[Tt]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || process.platform === 'linux') return false;
    return /^T/.test(execFileSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8' }).trim());
  }
}

/** Starts the CLI and waits for it to exit. */
export async function runCli(args: readonly string[], options: CliOptions): Promise<CliResult> {
  return startCli(args, options).exited;
}

/**
 * Kills (SIGKILL) and reaps every child still running, and returns a description of each one
 * that was: afterEach fails the test with it. SIGKILL also ends a stopped process.
 */
export async function reapChildren(): Promise<string[]> {
  const left = [...live];
  for (const handle of left) handle.signal('SIGKILL');
  await Promise.all(left.map((handle) => handle.exited));
  return left.map(describe);
}

function describe(handle: CliProcess): string {
  return `newsletter ${handle.args.join(' ')} (pid ${handle.pid})`;
}
