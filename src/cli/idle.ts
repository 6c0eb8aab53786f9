/**
 * The crontab's `send-due` when nothing is due, answered before commander, the engine, the run
 * lock or anything else heavy is loaded: the every-minute idle run should cost little more than
 * starting Node (docs/benchmarks.md measures it).
 *
 * This path only ever says "idle, and all is well": the plain cron line (`send-due`, with
 * `--env-file`, `--database` or `--quiet` at most), stdout not a terminal, a configuration a real
 * send accepts, a SQLite database of the current schema bound to this host, and nothing due or
 * sending. In every other case, or on any error, it returns false and the normal path runs and
 * says what it has to say, exactly as before.
 *
 * How it is run: `npm run build` bundles this file and everything it imports (the configuration's
 * whole validation, the probe) into one CommonJS file, dist/cli/idle-bundle.cjs
 * (scripts/build-idle-bundle.js), which bin/newsletter.js requires before it imports the normal
 * program (dist/cli/main.js). One CommonJS file instead of 27 ES modules and better-sqlite3's 13
 * files saves the ES module loader and a resolution and compilation per file: about 20 of the
 * 55 ms an idle minute took (bench/NOTES.md, issue 17, session 5). So this path is synchronous (a
 * plain `require` away), and imports what it needs statically.
 */
import { fstatSync } from 'node:fs';
import { createRequire } from 'node:module';
import { loadConfig, problemsForRealSend } from '../config.js';
import { detectHostId } from '../host/identity.js';
import { probeIdle } from '../store/sqlite/idle-probe.js';
import type { GlobalOptions } from './context.js';

const require = createRequire(import.meta.url);

export function quietIdleSendDue(args: readonly string[]): boolean {
  if (stdoutIsTerminal()) return false;
  const global = plainSendDue(args);
  if (global === null) return false;
  try {
    // As createContext and currentHost do it for every command.
    const config = loadConfig({
      cwd: process.cwd(),
      env: process.env,
      envFile: global.envFile ?? null,
      overrides: { database: global.database },
    });
    if (config.database.kind !== 'sqlite' || problemsForRealSend(config).length > 0) return false;
    // A misspelt NEWSLETTER_* name needs a person: the normal path says so on stderr.
    if (config.unknownVariables.length > 0) return false;
    return probeIdle({
      file: config.database.path,
      busyTimeoutMs: config.busyTimeoutMs,
      hostId: config.hostIdOverride ?? detectHostId({ env: { NEWSLETTER_HOST_ID: '' } }).hostId,
      now: Date.now(),
    });
  } catch {
    // Whatever it is, the normal path meets it again and reports it properly.
    return false;
  }
}

/**
 * isatty(1), asked only when stdout could be a terminal at all. Loading node:tty loads node:net
 * with it, about 3 ms of the idle minute; cron's stdout is a pipe (a file, a socket under
 * systemd), none of which can be a terminal, so only a character device (a terminal, or
 * /dev/null) needs the question. Not process.stdout.isTTY: creating the stream costs more still.
 */
function stdoutIsTerminal(): boolean {
  let characterDevice = true;
  try {
    characterDevice = fstatSync(1).isCharacterDevice();
  } catch {
    // fd 1 closed or odd: ask isatty, which says no.
  }
  return characterDevice && (require('node:tty') as typeof import('node:tty')).isatty(1);
}

/** The global options of a plain `send-due` line, or null for anything else. */
function plainSendDue(args: readonly string[]): GlobalOptions | null {
  const global: GlobalOptions = {};
  let command = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const [flag, inline] =
      arg.startsWith('--') && arg.includes('=') ? arg.split(/=(.*)/s, 2) : [arg, undefined];
    if (arg === 'send-due' && !command) command = true;
    else if (arg === '-q' || arg === '--quiet') global.quiet = true;
    else if (flag === '--env-file' || flag === '--database') {
      const value = inline ?? args[++i];
      if (value === undefined || value === '' || value.startsWith('-')) return null;
      if (flag === '--env-file') global.envFile = value;
      else global.database = value;
    } else return null;
  }
  return command ? global : null;
}
