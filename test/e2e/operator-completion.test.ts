/**
 * Help and completion: every command's --help has an example, and `completion bash|zsh` prints a
 * script generated from the commander program that a real bash completes with.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/program.js';
import { assertBuilt, makeWorkspace, type Workspace } from '../helpers/cli.js';

let ws: Workspace;
beforeAll(async () => {
  assertBuilt();
  ws = await makeWorkspace('newsletter-completion-');
});
afterAll(async () => ws?.cleanup());

function allCommands(command: Command, path: string[] = []): { path: string; command: Command }[] {
  return command.commands.flatMap((child) => [
    { path: [...path, child.name()].join(' '), command: child },
    ...allCommands(child, [...path, child.name()]),
  ]);
}

describe('help', () => {
  it('every command, groups included, shows at least one example in its --help', () => {
    const program = buildProgram();
    const commands = [{ path: '(root)', command: program }, ...allCommands(program)];
    expect(commands.length).toBeGreaterThan(20);
    for (const { path, command } of commands) {
      let help = '';
      command.configureOutput({ writeOut: (text) => (help += text), writeErr: (text) => (help += text) });
      command.outputHelp();
      expect(help, `newsletter ${path} --help`).toMatch(/\nExamples?:\n {2}\S/);
    }
  });

  it('the built CLI prints it too', async () => {
    const result = await ws.run(['doctor', '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('--crontab <file>');
    expect(result.stdout).toMatch(/Examples:\n {2}newsletter --env-file \S+ doctor/);
  });
});

/** Asks bash for completions of `words` (the last one being completed). */
function complete(script: string, words: string[]): string[] {
  const file = ws.path('completion.bash');
  writeFileSync(file, script);
  const array = words.map((word) => `'${word}'`).join(' ');
  const result = spawnSync(
    'bash',
    [
      '--norc',
      '-c',
      `source '${file}'; COMP_WORDS=(${array}); COMP_CWORD=${words.length - 1}; _newsletter_complete; printf '%s\\n' "\${COMPREPLY[@]}"`,
    ],
    { encoding: 'utf8' },
  );
  expect(result.status, result.stderr).toBe(0);
  return result.stdout.split('\n').filter(Boolean);
}

describe('completion', () => {
  it('bash: commands, subcommands, options (global ones too) and option values', async () => {
    const result = await ws.run(['completion', 'bash']);
    expect(result.code).toBe(0);
    const script = result.stdout;
    expect(script).toContain('complete -o default -F _newsletter_complete newsletter');
    expect(complete(script, ['newsletter', ''])).toEqual(
      expect.arrayContaining(['init', 'recipients', 'send-due', 'status', 'doctor', 'completion']),
    );
    expect(complete(script, ['newsletter', 'sen'])).toEqual(['send-due']);
    expect(complete(script, ['newsletter', 'recipients', 'im'])).toEqual(['import']);
    expect(complete(script, ['newsletter', '--database', 'x.db', 'send-due', '--m'])).toEqual([
      '--max-messages',
      '--max-seconds',
    ]);
    expect(complete(script, ['newsletter', 'doctor', '--'])).toEqual(
      expect.arrayContaining(['--crontab', '--json', '--log-format', '--env-file', '--help']),
    );
    expect(complete(script, ['newsletter', 'preview', '3', '--width', ''])).toEqual(['600', '375']);
    expect(complete(script, ['newsletter', '--log-format', ''])).toEqual(['text', 'json']);
  });

  it('zsh: a #compdef script with descriptions, valid zsh where zsh is installed', async () => {
    const result = await ws.run(['completion', 'zsh']);
    expect(result.code).toBe(0);
    expect(result.stdout.startsWith('#compdef newsletter\n')).toBe(true);
    expect(result.stdout).toContain("'send-due:send whatever is due; run it from cron every minute'");
    expect(result.stdout).toContain('compdef _newsletter newsletter');
    const zsh = spawnSync('zsh', ['--version']);
    if (zsh.status === 0) {
      const file = ws.path('_newsletter');
      writeFileSync(file, result.stdout);
      expect(spawnSync('zsh', ['-n', file]).status).toBe(0);
      // Run it with the completion system's functions replaced by ones that print what they get.
      const probe = ws.path('probe.zsh');
      writeFileSync(
        probe,
        [
          'compdef() { :; }',
          `_describe() { print -l -- "\${(@P)4}"; }`,
          `compadd() { print -l -- "\${reply[@]}"; }`,
          '_files() { print FILES; }',
          `source '${file}'`,
          'words=(newsletter recipients im); CURRENT=3; _newsletter',
          "words=(newsletter preview 3 --width ''); CURRENT=5; _newsletter",
          "words=(newsletter recipients import ''); CURRENT=4; _newsletter",
        ].join('\n'),
      );
      const run = spawnSync('zsh', ['-f', probe], { encoding: 'utf8' });
      expect(run.status, run.stderr).toBe(0);
      const lines = run.stdout.split('\n');
      expect(lines).toContain(
        'import:import a CSV with a header row: email,name,… (other columns become merge fields)',
      );
      expect(lines).toEqual(expect.arrayContaining(['600', '375', 'FILES']));
    } else {
      console.warn('zsh is not installed: the zsh script was checked by its content only');
    }
  });

  it('an unknown shell is a usage error', async () => {
    const result = await ws.run(['completion', 'fish']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('Unknown shell "fish"');
  });
});
