/**
 * `man newsletter`: the manual page, written in roff from the commander program itself (as
 * `completion` is), so that it never drifts from the commands and options that exist. The build
 * writes it to man/newsletter.1 (scripts/build-man-page.js); package.json's "man" field makes
 * `npm install -g` link it under the prefix's share/man/man1.
 *
 * Each command gets its usage, its description, its options (with defaults and allowed values)
 * and the examples its --help prints after the options.
 */
import type { EventEmitter } from 'node:events';
import type { Command, Option } from 'commander';
import { ExitCode } from '../domain/exit-codes.js';

export interface ManPageOptions {
  /** The date in the page's header, YYYY-MM-DD (the build passes SOURCE_DATE_EPOCH's when set). */
  date: string;
  version: string;
  /** The README's exit code table (`exitCodeRows`); without it, the codes' names. */
  exitCodes?: ExitCodeRow[];
}

export interface ExitCodeRow {
  code: string;
  meaning: string;
  whatToDo: string;
}

/**
 * The rows of the README's "Exit codes" table, the one place that says what each code means and
 * what to do: the manual repeats it rather than keeping a second wording that would drift.
 * Empty when the table is not found (test/unit/man-page.test.ts fails then).
 */
export function exitCodeRows(readme: string): ExitCodeRow[] {
  const section = readme.split(/^## Exit codes$/m)[1]?.split(/^## /m)[0] ?? '';
  return section
    .split('\n')
    .map((line) => /^\| (\d+) \| (.+?) \| (.+?) \|$/.exec(line))
    .filter((match) => match !== null)
    .map(([, code = '', meaning = '', whatToDo = '']) => ({ code, meaning, whatToDo }));
}

export function manPage(program: Command, options: ManPageOptions): string {
  const name = program.name();
  return [
    `.TH ${name.toUpperCase()} 1 "${options.date}" "${name} ${options.version}" "User Commands"`,
    '.SH NAME',
    `${name} \\- ${text(program.description())}`,
    '.SH SYNOPSIS',
    `.B ${name}`,
    '[\\fIglobal options\\fR] \\fIcommand\\fR [\\fIoptions\\fR] [\\fIarguments\\fR]',
    '.SH DESCRIPTION',
    `A crontab line runs \\fB${name} send\\-due\\fR every minute; it sends whatever newsletter is due and`,
    "records each recipient's outcome in a ledger, so that nobody gets a newsletter twice and nobody is",
    'silently skipped. It prints nothing when all went well under cron, and exits non\\-zero when',
    'something needs a person (see EXIT STATUS).',
    'Every command that shows data takes \\fB\\-\\-json\\fR.',
    '.SH GLOBAL OPTIONS',
    ...visibleOptions(program).flatMap(optionEntry),
    '.SH COMMANDS',
    ...commandsOf(program).flatMap((command) => commandEntry(command, [name])),
    ...examplesSection(program),
    '.SH EXIT STATUS',
    ...exitStatus(options.exitCodes ?? []),
    '.SH FILES',
    'The installed package (\\fB$(npm root \\-g)/newsletter\\fR after \\fBnpm install \\-g\\fR) holds',
    '\\fBtemplates/\\fR (the starter MJML templates; \\fBnewsletter templates init\\fR copies them out),',
    '\\fBcrontab.example\\fR, \\fBsystemd/\\fR (a service and a timer), \\fBdocs/\\fR and \\fBREADME.md\\fR.',
    '.SH SEE ALSO',
    '.BR crontab (5),',
    '.BR systemd.timer (5);',
    'README.md and docs/operations.md in the installed package.',
    '',
  ].join('\n');
}

/** A command, then its subcommands (a group such as `host` may also run on its own). */
function commandEntry(command: Command, parents: string[]): string[] {
  const path = [...parents, command.name()];
  return [
    `.SS "${text(`${path.join(' ')} ${command.usage()}`)}"`,
    text(command.description()),
    ...visibleOptions(command).flatMap(optionEntry),
    ...helpTextAfter(command),
    ...commandsOf(command).flatMap((child) => commandEntry(child, path)),
  ];
}

function optionEntry(option: Option): string[] {
  const notes = [
    option.argChoices?.length ? `one of: ${option.argChoices.join(', ')}` : null,
    // `false` and '' are commander's way of saying "off" and "empty": nothing worth printing.
    option.defaultValue !== undefined && option.defaultValue !== false && option.defaultValue !== ''
      ? `default: ${String(option.defaultValue)}`
      : null,
    option.mandatory ? 'required' : null,
  ].filter((note) => note !== null);
  return [
    '.TP',
    `.B ${text(option.flags)}`,
    text(`${option.description}${notes.length > 0 ? ` (${notes.join('; ')})` : ''}`),
  ];
}

/** The program's own examples (the end of `newsletter --help`), under the section's heading. */
function examplesSection(program: Command): string[] {
  const lines = helpLinesAfter(program).filter((line) => !/^Examples?:$/.test(line));
  return lines.length > 0 ? ['.SH EXAMPLES', '.nf', ...lines.map(text), '.fi'] : [];
}

/** A command's help text after its options, as written (no filling: examples keep their lines). */
function helpTextAfter(command: Command): string[] {
  const lines = helpLinesAfter(command);
  return lines.length > 0 ? ['.PP', '.nf', ...lines.map(text), '.fi'] : [];
}

/**
 * What `addHelpText('after', …)` prints below a command's options (its examples), kept as written:
 * commander keeps it only as a listener of the command's 'afterHelp' event, so ask the listeners.
 */
function helpLinesAfter(command: Command): string[] {
  let after = '';
  (command as unknown as EventEmitter).emit('afterHelp', {
    error: false,
    command,
    write: (chunk: string) => {
      after += chunk;
    },
  });
  const trimmed = after.replace(/^\n+|\n+$/g, '');
  return trimmed === '' ? [] : trimmed.split('\n');
}

function commandsOf(command: Command): Command[] {
  return command.commands.filter((child) => !(child as Command & { _hidden?: boolean })._hidden);
}

function visibleOptions(command: Command): Option[] {
  return command.options.filter((option) => !option.hidden);
}

function exitStatus(rows: ExitCodeRow[]): string[] {
  if (rows.length === 0) {
    return Object.entries(ExitCode).flatMap(([key, code]) => ['.TP', `.B ${code}`, words(key)]);
  }
  return rows.flatMap((row) => [
    '.TP',
    `.B ${row.code}`,
    `${markdown(row.meaning)}.`,
    '.br',
    `What to do: ${markdown(row.whatToDo)}.`,
  ]);
}

/** A table cell's `code` spans in bold; the rest as text. */
function markdown(cell: string): string {
  return cell
    .split('`')
    .map((part, i) => (i % 2 === 1 ? `\\fB${text(part)}\\fR` : text(part)))
    .join('');
}

/** `partlyFailed` → "partly failed". */
function words(key: string): string {
  return key.replace(/[A-Z]/g, (letter) => ` ${letter.toLowerCase()}`);
}

/**
 * Text for roff: a backslash is its escape character, a line that starts with `.` or `'` would be
 * read as a request, `-` is written `\-` so that options copied from the page are plain hyphens
 * (groff renders a bare `-` as a typographic hyphen), and characters beyond ASCII (`…`) are
 * named by code point, which every formatter reads whatever its input encoding.
 */
function text(value: string): string {
  return value
    .replace(/\\/g, '\\e')
    .replace(/-/g, '\\-')
    .replace(/^(?=[.'])/gm, '\\&')
    .replace(
      /[\u0080-\u{10FFFF}]/gu,
      (char) => `\\[u${char.codePointAt(0)?.toString(16).toUpperCase().padStart(4, '0')}]`,
    );
}
