/**
 * One exit path: commands return their exit code, src/cli/main.ts alone sets it on the process or
 * ends the process (the README's exit-code table is a contract that crontabs rely on, and a code
 * set from two places is a code nobody can reason about).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CommandActions } from '../../src/cli/command-actions.js';
import { ExitCode } from '../../src/domain/exit-codes.js';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

const neverLent = (): never => {
  throw new Error('not in this test');
};

describe('the exit path', () => {
  it('only src/cli/main.ts sets process.exitCode or calls process.exit', () => {
    const setters = sourceFiles(SRC).filter((file) =>
      /process\.exitCode\s*=|process\.exit\(/.test(readFileSync(file, 'utf8')),
    );
    expect(setters.map((file) => path.relative(SRC, file))).toEqual(['cli/main.ts']);
  });

  it('keeps the code a command returns, and 0 for a command that returns nothing', async () => {
    const actions = new CommandActions(neverLent);
    expect(actions.exitCode).toBe(ExitCode.ok);
    await actions.unconfigured(async () => ExitCode.partlyFailed)();
    expect(actions.exitCode).toBe(ExitCode.partlyFailed);
    await actions.unconfigured(async () => undefined)();
    expect(actions.exitCode).toBe(ExitCode.ok);
  });

  it('passes commander’s arguments through to the command', async () => {
    const actions = new CommandActions(neverLent);
    const seen: unknown[] = [];
    await actions.unconfigured(async (shell: string, options: { json?: boolean }) => {
      seen.push(shell, options);
    })('bash', { json: true });
    expect(seen).toEqual(['bash', { json: true }]);
  });
});
