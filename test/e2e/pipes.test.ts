/**
 * A closed pipe ends a command quietly (issue 15): `newsletter recipients list | head -1` must
 * exit 0 with nothing on stderr, not crash on EPIPE with exit 1 (which the README calls a bug).
 *
 * Through bash and a real `head -1`: the listing is far longer than a pipe holds, so once head
 * has its line and exits, the CLI's next write fails with EPIPE for certain. For the short outputs
 * (`--help`, `status`, `show`), head -1 checks the same path, and a reader that is gone before
 * the command even starts makes their very first write fail.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, BIN, makeWorkspace, type Workspace } from '../helpers/cli.js';

const LONG = 4000;
let ws: Workspace;
let newsletterId: number;

beforeAll(async () => {
  assertBuilt();
  ws = await makeWorkspace('newsletter-pipes-');
  await ws.ok(['init']);
  const { file } = await ws.writeCsv(LONG);
  await ws.ok(['recipients', 'import', file, '--list', 'readers']);
  newsletterId = await ws.createDue();
}, 60_000);
afterAll(async () => ws?.cleanup());

/** A word for bash, quoted. */
const quote = (word: string) => `'${word.replace(/'/g, `'\\''`)}'`;

const childEnv = () => ({ PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: ws.dir, ...ws.env });

/** `newsletter ARGS 2>FILE | head -1`: head's line, the CLI's exit code and its stderr. */
function pipedToHead(args: string[]): { first: string; code: number; stderr: string } {
  const errors = ws.path(`stderr-${args.join('-').replace(/\W+/g, '_')}.txt`);
  const cli = [process.execPath, BIN, ...args].map(quote).join(' ');
  const result = spawnSync(
    'bash',
    ['-c', `${cli} 2>${quote(errors)} | head -1; echo "exit=\${PIPESTATUS[0]}"`],
    {
      cwd: ws.dir,
      env: childEnv(),
      encoding: 'utf8',
    },
  );
  expect(result.status, result.stderr).toBe(0);
  const [first = '', status = ''] = result.stdout.split('\n');
  return { first, code: Number(status.replace('exit=', '')), stderr: readFileSync(errors, 'utf8') };
}

/** The CLI with a stdout whose reader is gone before it starts: its first write fails with EPIPE. */
function withReaderGone(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: ws.dir,
      env: childEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stderr }));
  });
}

describe('a closed pipe ends the command quietly, exit 0', () => {
  it('recipients list | head -1 on a long listing', () => {
    const listed = spawnSync(process.execPath, [BIN, 'recipients', 'list', '--limit', String(LONG)], {
      cwd: ws.dir,
      env: childEnv(),
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    // Far more than a pipe holds (64 KiB on Linux), so the writer must meet the closed pipe.
    expect(listed.stdout.length).toBeGreaterThan(200_000);
    const piped = pipedToHead(['recipients', 'list', '--limit', String(LONG)]);
    expect(piped).toEqual({ first: listed.stdout.split('\n')[0], code: 0, stderr: '' });
  });

  it.each([['--help'], ['status'], ['show', '{id}'], ['recipients', 'list', '--json', '--limit', '100']])(
    '%s %s | head -1, and with the reader gone before it starts',
    async (...template) => {
      const args = template.map((arg) => (arg === '{id}' ? String(newsletterId) : arg));
      // `recipients list` stopping at its --limit says so on stderr (issue 14): that note is not noise.
      const withoutPageNote = (r: { code: number | null; stderr: string }) => ({
        code: r.code,
        stderr: r.stderr.replace(/^showing the first \d+; more with --after \d+\n/m, ''),
      });
      const piped = pipedToHead(args);
      expect(piped.first).not.toBe('');
      expect(withoutPageNote(piped)).toEqual({ code: 0, stderr: '' });
      expect(withoutPageNote(await withReaderGone(args))).toEqual({ code: 0, stderr: '' });
    },
  );
});
