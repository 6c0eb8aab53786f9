/**
 * Reading crontabs (and systemd units) for `send-due` lines, and working out which database each
 * one sends from. The origin story's duplicates began with the same `send-due` line in two
 * places (a user crontab and /etc/cron.d, or two hosts with the same crontab): the lock and the
 * ledger make that harmless here, but it is still the first thing an operator should see.
 *
 * Pure functions: the caller reads the files (src/doctor/cron-sources.ts) and passes their text.
 */
import path from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { DEFAULT_DATABASE, isPostgresUrl } from '../domain/database-location.js';
import { settingOf } from '../domain/setting-precedence.js';
import { type CheckResult, ok, warning } from './types.js';

/** `user`: `crontab -l` (5 time fields, then the command); `system`: /etc/crontab and /etc/cron.d (a user field too). */
export type CrontabFormat = 'user' | 'system';

export interface ScheduledCommand {
  /** Where it was read, e.g. `/etc/cron.d/newsletter` or `crontab -l`. */
  source: string;
  /** 1-based line number in that source. */
  line: number;
  kind: 'cron' | 'systemd';
  /** `* * * * *`, `@hourly`, or `systemd` for a unit's ExecStart. */
  schedule: string;
  /** The user field of a system crontab (or a unit's User=); null for a user crontab. */
  user: string | null;
  command: string;
  /** Variables set before it: crontab assignments (MAILTO, PATH, NEWSLETTER_*), or a unit's Environment=. */
  env: Record<string, string>;
  /** A unit's WorkingDirectory=; for cron, the owner's home (decided when resolving). */
  cwd: string | null;
}

const ENV_LINE = /^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/;
const SEND_DUE = /(^|[\s/'"])send-due($|[\s'";&|)])/;

/** Every command line of a crontab, with the environment assignments in force above it. */
export function parseCrontab(text: string, format: CrontabFormat, source: string): ScheduledCommand[] {
  const commands: ScheduledCommand[] = [];
  const env: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  for (const [index, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const assignment = ENV_LINE.exec(line);
    if (assignment) {
      env[assignment[1] as string] = unquote((assignment[2] as string).trim());
      continue;
    }
    const fields = line.split(/\s+/);
    const timeFields = fields[0]?.startsWith('@') ? 1 : 5;
    const userFields = format === 'system' ? 1 : 0;
    if (fields.length <= timeFields + userFields) continue;
    const schedule = fields.slice(0, timeFields).join(' ');
    const user = format === 'system' ? (fields[timeFields] as string) : null;
    // The command is the rest of the line as written (its own spacing kept).
    const command = cronCommand(skipFields(line, timeFields + userFields));
    commands.push({
      source,
      line: index + 1,
      kind: 'cron',
      schedule,
      user,
      command,
      env: { ...env },
      cwd: null,
    });
  }
  return commands;
}

/**
 * True when every command line of `text` has, after its schedule, a field naming a user of this
 * host (`isUser`): the shape of /etc/crontab. False for a text with no command line. A host may
 * well have a `newsletter` user: `newsletter send-due` or `newsletter --env-file …` is still the
 * program with its arguments, not that user running `send-due`.
 */
export function sixthFieldsAreUsers(text: string, isUser: (name: string) => boolean): boolean {
  const entries = parseCrontab(text, 'system', 'sniff');
  const programRun = (user: string, command: string) =>
    /(^|\/)newsletter$/.test(user) && /^(-|send-due\b)/.test(command);
  return (
    entries.length > 0 &&
    entries.every((entry) => isUser(entry.user as string) && !programRun(entry.user as string, entry.command))
  );
}

/** ExecStart= of a systemd service, with its WorkingDirectory=, User= and Environment=. */
export function parseSystemdUnit(text: string, source: string): ScheduledCommand[] {
  const env: Record<string, string> = {};
  let cwd: string | null = null;
  let user: string | null = null;
  const starts: { line: number; command: string }[] = [];
  for (const [index, raw] of text.split(/\r?\n/).entries()) {
    const match = /^\s*([A-Za-z]+)\s*=\s*(.*)$/.exec(raw);
    if (!match) continue;
    const [, key, value = ''] = match;
    if (key === 'ExecStart') starts.push({ line: index + 1, command: value.replace(/^[-@:+!]+/, '') });
    else if (key === 'WorkingDirectory') cwd = value.replace(/^-/, '').trim() || null;
    else if (key === 'User') user = value.trim() || null;
    else if (key === 'Environment') {
      for (const word of splitWords(value)) {
        const assignment = ENV_LINE.exec(word);
        if (assignment) env[assignment[1] as string] = assignment[2] as string;
      }
    }
  }
  return starts.map((start) => ({
    source,
    line: start.line,
    kind: 'systemd' as const,
    schedule: 'systemd',
    user,
    command: start.command,
    env: { ...env },
    cwd,
  }));
}

/** A real `send-due` (not a dry run) of newsletter. */
export function isSendDue(command: string): boolean {
  return /newsletter/.test(command) && SEND_DUE.test(command) && !/--dry-run\b/.test(command);
}

export interface ResolveContext {
  /** The home folder of a user (cron starts commands there); null when unknown. */
  homeOf: (user: string | null) => string | null;
  /** A file's text, or null when it cannot be read. */
  readFile: (file: string) => string | null;
}

export interface Resolved {
  /** Absolute path of the SQLite file (or the postgres:// URL), or null when it cannot be worked out. */
  database: string | null;
  /** Why it could not be worked out. */
  unresolved?: string;
  /** The env file the line's send-due reads (`--env-file`, or `.env` where it runs), read or not. */
  envFile?: string;
}

/**
 * Which database a `send-due` command line uses, by the CLI's own rule (settingOf): `--database`,
 * then NEWSLETTER_DATABASE from the environment (crontab assignments, `VAR=… newsletter`, `env`,
 * `export`), then the env file (`--env-file`, or `.env` in the folder it runs in), then
 * `./newsletter.db`; relative paths from the folder it runs in (`cd DIR &&`, else the owner's home).
 */
export function resolveDatabase(entry: ScheduledCommand, context: ResolveContext): Resolved {
  const home = context.homeOf(entry.user);
  let cwd: string | null = entry.cwd ?? home;
  const env: Record<string, string> = { ...entry.env };
  for (const segment of splitCommand(entry.command)) {
    const words = [...segment];
    const local: Record<string, string> = {};
    // `VAR=value cmd`, `env VAR=value cmd`
    while (words.length > 0) {
      const word = words[0] as string;
      const assignment = ENV_LINE.exec(word);
      if (assignment && !word.startsWith('-')) {
        local[assignment[1] as string] = assignment[2] as string;
        words.shift();
      } else if (word === 'env' || word === '/usr/bin/env') {
        words.shift();
        while (words[0]?.startsWith('-')) words.shift();
      } else break;
    }
    const head = words[0];
    if (head === undefined) {
      Object.assign(env, local);
      continue;
    }
    if (head === 'cd') {
      const target = words[1] ?? home;
      if (target === null || target === undefined) cwd = null;
      else cwd = resolvePath(expandHome(target, home), cwd);
      continue;
    }
    if (head === 'export') {
      for (const word of words.slice(1)) {
        const assignment = ENV_LINE.exec(word);
        if (assignment) env[assignment[1] as string] = assignment[2] as string;
      }
      continue;
    }
    const script = shellScript(words);
    if (script !== null) {
      // `sh -c 'cd /srv/site && newsletter send-due'`: the same rules, inside the quotes.
      return resolveDatabase({ ...entry, command: script, env: { ...env, ...local }, cwd }, context);
    }
    if (!words.some((word) => word === 'send-due')) continue;
    return fromArguments(words, { ...env, ...local }, cwd, home, context);
  }
  return { database: null, unresolved: 'the send-due command could not be found in the line' };
}

/** The script of `sh -c SCRIPT` (bash, dash, `-lc`…) when it runs send-due; null otherwise. */
function shellScript(words: readonly string[]): string | null {
  if (!/(^|\/)(ba|da|k|z)?sh$/.test(words[0] ?? '')) return null;
  const flag = words.findIndex((word, i) => i > 0 && /^-[a-z]*c[a-z]*$/.test(word));
  const script = flag === -1 ? undefined : words[flag + 1];
  return script !== undefined && SEND_DUE.test(script) ? script : null;
}

function fromArguments(
  words: string[],
  env: Record<string, string>,
  cwd: string | null,
  home: string | null,
  context: ResolveContext,
): Resolved {
  const option = (name: string): string | null => {
    for (const [i, word] of words.entries()) {
      if (word === name) return words[i + 1] ?? null;
      if (word.startsWith(`${name}=`)) return word.slice(name.length + 1);
    }
    return null;
  };
  const relative = (value: string): Resolved => {
    if (isPostgresUrl(value)) return { database: value };
    const resolved = resolvePath(expandHome(value, home), cwd);
    return resolved === null
      ? { database: null, unresolved: `"${value}" is relative and the folder it runs in is unknown` }
      : { database: resolved };
  };
  const envFileFlag = option('--env-file');
  let envFileProblem: string | null = null;
  const envFile = (): Record<string, string> | null => {
    const file = resolvePath(expandHome(envFileFlag ?? '.env', home), cwd);
    if (file === null) {
      if (envFileFlag !== null)
        envFileProblem = `its --env-file ${envFileFlag} is relative to an unknown folder`;
      return null;
    }
    const text = context.readFile(file);
    if (text === null && envFileFlag !== null) envFileProblem = `its --env-file ${file} cannot be read`;
    return text === null ? null : parseDotenv(text);
  };
  const database = settingOf(
    { envFile, environment: env, flags: { NEWSLETTER_DATABASE: option('--database') ?? undefined } },
    'NEWSLETTER_DATABASE',
  );
  if (envFileProblem !== null) return { database: null, unresolved: envFileProblem };
  // The CLI reads that file for every other setting too (doctor looks at its names: cron-variables.ts).
  const envFilePath = resolvePath(expandHome(envFileFlag ?? '.env', home), cwd);
  const resolved = relative(database ?? DEFAULT_DATABASE);
  return envFilePath === null ? resolved : { ...resolved, envFile: envFilePath };
}

export interface ResolvedCommand extends ScheduledCommand, Resolved {}

export const where = (entry: ScheduledCommand): string => `${entry.source}:${entry.line}`;

/**
 * The cron checks for one database: the send-due line is there exactly once, and cron mails what
 * it prints (MAILTO) somewhere a person reads.
 * `sameDatabase` compares two paths (the caller resolves symlinks).
 */
export function cronChecks(
  commands: readonly ResolvedCommand[],
  database: string,
  sources: readonly string[],
  sameDatabase: (a: string, b: string) => boolean = (a, b) => a === b,
): CheckResult[] {
  const sendDue = commands.filter((entry) => isSendDue(entry.command));
  const mine = sendDue.filter((entry) => entry.database !== null && sameDatabase(entry.database, database));
  const unknown = sendDue.filter((entry) => entry.database === null);
  const read = sources.length > 0 ? sources.join(', ') : 'no crontab';
  const results: CheckResult[] = [];
  const unknownNote =
    unknown.length > 0
      ? ` ${unknown.length} send-due ${unknown.length === 1 ? 'line uses' : 'lines use'} a database that could not be worked out: ${unknown
          .map((entry) => `${where(entry)} (${entry.unresolved ?? 'unknown'})`)
          .join(', ')}.`
      : '';

  if (mine.length === 0) {
    results.push(
      warning(
        'cron',
        `No send-due line for ${database} in ${read}: nothing sends what is due.${unknownNote}`,
        'Add `* * * * * newsletter --env-file /etc/newsletter/SITE.env send-due` (see crontab.example), or install the systemd timer (systemd/). Ignore this if another scheduler runs it.',
      ),
    );
  } else if (mine.length === 1) {
    const entry = mine[0] as ResolvedCommand;
    results.push(
      ok('cron', `send-due runs for this database from ${where(entry)} (${entry.schedule}).${unknownNote}`),
    );
  } else {
    results.push(
      warning(
        'cron',
        `send-due for ${database} appears ${mine.length} times: ${mine.map((entry) => `${where(entry)} (${entry.schedule})`).join(', ')}. ` +
          'Every extra line starts another run each minute. The run lock and the ledger keep that from sending twice, ' +
          'but duplicated cron lines are how the duplicates of the mailer this replaces began.',
        'Keep exactly one line for this database: remove the others (`crontab -e`, or the file in /etc/cron.d).',
      ),
    );
  }

  const cron = mine.filter((entry) => entry.kind === 'cron');
  if (cron.length > 0) {
    const unset = cron.filter((entry) => entry.env.MAILTO === undefined);
    const empty = cron.filter((entry) => entry.env.MAILTO === '');
    if (unset.length > 0 || empty.length > 0) {
      const parts = [
        ...unset.map(
          (entry) =>
            `${where(entry)} has no MAILTO: cron mails what send-due prints on failure to the local mailbox of ${entry.user ?? 'the crontab owner'}, which nobody may read`,
        ),
        ...empty.map(
          (entry) => `${where(entry)} has MAILTO="" : cron throws away what send-due prints on failure`,
        ),
      ];
      results.push(
        warning(
          'cron-mailto',
          `${parts.join('; ')}.`,
          'Put `MAILTO=ops@example.org` (an address someone reads) above the send-due line: send-due prints only when something needs a person.',
        ),
      );
    } else {
      const to = [...new Set(cron.map((entry) => entry.env.MAILTO))].join(', ');
      results.push(ok('cron-mailto', `cron mails send-due's failures to ${to}.`));
    }
  }
  return results;
}

// ---- small shell-ish helpers ---------------------------------------------------------------

/** cron turns an unescaped % into a newline (the rest is stdin); `\%` is a literal %. */
function cronCommand(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (char === '\\' && text[i + 1] === '%') {
      out += '%';
      i += 1;
    } else if (char === '%') break;
    else out += char;
  }
  return out.trim();
}

function skipFields(line: string, count: number): string {
  let rest = line;
  for (let i = 0; i < count; i++) rest = rest.replace(/^\S+\s+/, '');
  return rest;
}

function unquote(value: string): string {
  const match = /^(["'])(.*)\1$/.exec(value);
  return match ? (match[2] as string) : value;
}

/** Words of one shell command, quotes removed (no expansion but `~`). */
export function splitWords(text: string): string[] {
  return splitCommand(text).flat();
}

/** A command line cut into simple commands at `&&`, `||`, `;` and `|`, each a list of words. */
export function splitCommand(text: string): string[][] {
  const segments: string[][] = [[]];
  let word: string | null = null;
  const push = () => {
    if (word !== null) (segments.at(-1) as string[]).push(word);
    word = null;
  };
  for (let i = 0; i < text.length; i++) {
    const char = text[i] as string;
    if (char === "'") {
      const end = text.indexOf("'", i + 1);
      const stop = end === -1 ? text.length : end;
      word = (word ?? '') + text.slice(i + 1, stop);
      i = stop;
    } else if (char === '"') {
      let j = i + 1;
      let value = '';
      while (j < text.length && text[j] !== '"') {
        if (text[j] === '\\' && j + 1 < text.length) j += 1;
        value += text[j];
        j += 1;
      }
      word = (word ?? '') + value;
      i = j;
    } else if (char === '\\' && i + 1 < text.length) {
      word = (word ?? '') + text[i + 1];
      i += 1;
    } else if (/\s/.test(char)) {
      push();
    } else if (char === ';' || char === '|' || char === '&') {
      push();
      if (text[i + 1] === char) i += 1;
      segments.push([]);
    } else {
      word = (word ?? '') + char;
    }
  }
  push();
  return segments.filter((segment) => segment.length > 0);
}

function expandHome(value: string, home: string | null): string {
  if (home === null) return value;
  if (value === '~') return home;
  if (value.startsWith('~/')) return path.join(home, value.slice(2));
  if (value.startsWith('$HOME/')) return path.join(home, value.slice(6));
  return value;
}

function resolvePath(value: string, cwd: string | null): string | null {
  if (path.isAbsolute(value)) return path.normalize(value);
  return cwd === null ? null : path.resolve(cwd, value);
}
