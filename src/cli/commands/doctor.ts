/**
 * `newsletter doctor [--json] [--crontab FILE]…`: every check with ok, warning or problem, and
 * what to do. Exits 8 (partly failed) when any check is a problem, 0 otherwise (warnings too).
 *
 * Unlike the other commands, an invalid configuration is a finding here, not a reason to stop:
 * the doctor is what an operator runs when something is wrong.
 */
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import chalk from 'chalk';
import { redactor } from '../../config.js';
import { ConfigError } from '../../domain/errors.js';
import { ExitCode, type ExitCodeValue } from '../../domain/exit-codes.js';
import { runDoctor } from '../../doctor/run.js';
import { type CheckLevel, type CheckResult, problem, summarise } from '../../doctor/types.js';
import { isProcessAlive } from '../../host/process.js';
import { createContext, type GlobalOptions, openStore } from '../context.js';
import { currentHost } from '../host-identity.js';
import { printJson, println, setRedactor } from '../output.js';

export interface DoctorOptions {
  json?: boolean;
  crontab?: string[];
}

/** The longest the transport check may take: a server that accepts and never answers. */
const TRANSPORT_CHECK_MS = 15_000;

/** Prints every check and returns the exit code: 8 when any is a problem. */
export async function doctorCommand(global: GlobalOptions, options: DoctorOptions): Promise<ExitCodeValue> {
  const checks = await collect(global, options);
  const { problems, warnings } = summarise(checks);
  const exitCode = problems > 0 ? ExitCode.partlyFailed : ExitCode.ok;
  if (options.json) {
    printJson({ ok: problems === 0, problems, warnings, exitCode, checks });
    return exitCode;
  }
  const shown = global.quiet ? checks.filter((check) => check.level !== 'ok') : checks;
  const width = Math.max(...shown.map((check) => check.name.length), 0);
  for (const check of shown) {
    println(`${label(check.level)} ${check.name.padEnd(width)}  ${check.message}`);
    if (check.fix) println(`${' '.repeat(9 + width)}  ${chalk.dim('fix:')} ${check.fix}`);
  }
  if (!global.quiet || problems > 0) {
    println(
      problems + warnings === 0
        ? `doctor: all ${checks.length} checks are ok.`
        : `doctor: ${plural(problems, 'problem')}, ${plural(warnings, 'warning')}${problems > 0 ? ` (exit ${exitCode})` : ''}.`,
    );
  }
  return exitCode;
}

async function collect(global: GlobalOptions, options: DoctorOptions): Promise<CheckResult[]> {
  let context: ReturnType<typeof createContext>;
  try {
    // Unknown variables are one of the checks (run.ts), not a line on stderr as well.
    context = createContext(global, { warnUnknownVariables: false });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return [
      problem(
        'configuration',
        `${error.message} ${error.details.join(' ')}`,
        'Fix these in the env file (or the environment) that the crontab line uses; the other checks need a valid configuration.',
      ),
    ];
  }
  const { config } = context;
  setRedactor(redactor(config));
  const timeoutMs = Math.min(config.smtpTimeoutMs, TRANSPORT_CHECK_MS);
  return runDoctor({
    config,
    openStore: () => openStore(context, { readonly: true, requireCurrentSchema: false }),
    host: currentHost(config),
    hostname: hostname(),
    now: Date.now,
    crontabFiles: options.crontab && options.crontab.length > 0 ? options.crontab : null,
    readMounts: () => readFile('/proc/mounts', 'utf8').catch(() => null),
    isProcessAlive,
    createTransport: async (spec) => {
      const { createTransport } = await import('../../transport/index.js');
      return createTransport(spec, {
        maxConnections: 1,
        timeoutMs,
        tlsPolicy: config.smtpTls.policy,
        ca: config.smtpTls.ca?.pem ?? null,
      });
    },
    transportTimeoutMs: timeoutMs + 2_000,
  });
}

function label(level: CheckLevel): string {
  const text = level.padEnd(8);
  return level === 'ok' ? chalk.green(text) : level === 'warning' ? chalk.yellow(text) : chalk.red(text);
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
