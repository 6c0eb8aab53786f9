/**
 * `man newsletter` is generated from the commander program at build time, so it cannot drift from
 * the commands that exist; these tests check that it really covers them, that roff reads it
 * without complaint, and that its exit codes are the README's table.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { commandTree } from '../../src/cli/commands/completion.js';
import { exitCodeRows, manPage } from '../../src/cli/man-page.js';
import { buildProgram } from '../../src/cli/program.js';
import { ExitCode } from '../../src/domain/exit-codes.js';
import { REPO_ROOT } from '../helpers/postgres.js';

const readme = readFileSync(`${REPO_ROOT}README.md`, 'utf8');
const page = manPage(buildProgram(), {
  date: '2026-12-01',
  version: '0.1.0',
  exitCodes: exitCodeRows(readme),
});

describe('the man page', () => {
  it('has a section for every command and subcommand', () => {
    const paths = commandTree(buildProgram())
      .map((node) => node.path)
      .filter((path) => path !== '');
    const sections = page.split('\n').filter((line) => line.startsWith('.SS '));
    const missing = paths.filter(
      (path) => !sections.some((line) => line.startsWith(`.SS "newsletter ${path.replace(/-/g, '\\-')} `)),
    );
    expect(missing).toEqual([]);
  });

  it('lists each option with its default and the examples of --help', () => {
    expect(page).toContain('.B \\-\\-limit <n>\nat most this many (default: 1000)');
    expect(page).toContain('newsletter templates init ./templates');
  });

  it("takes every exit code's meaning and remedy from the README's table", () => {
    const rows = exitCodeRows(readme);
    expect(rows.map((row) => Number(row.code))).toEqual(Object.values(ExitCode));
    expect(page).toContain('.B 6\nanother \\fBsend\\-due\\fR holds the lock; nothing was done.');
  });

  it('is read by groff without a warning', () => {
    // groff is what `man` uses on Debian; -ww turns on every warning, -z discards the output.
    const groff = '/usr/bin/groff';
    expect(existsSync(groff), 'install groff (Debian: apt-get install groff-base) to check the page').toBe(
      true,
    );
    const result = spawnSync(groff, ['-man', '-ww', '-z'], { input: page, encoding: 'utf8' });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });
});
