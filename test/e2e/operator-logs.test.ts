/**
 * What send-due says on stderr, through the built CLI:
 * - under a non-terminal (cron) with nothing to do, or after a successful run: nothing at all;
 * - under cron when something needs a person: text, a short paragraph that says what happened and
 *   what to do (cron mails it to a person);
 * - with `--log-format json`, or under systemd (`JOURNAL_STREAM` or `INVOCATION_ID` set): one
 *   JSON object per line, one per event, and the failure of a run as a `run-failed` line with its
 *   exit code;
 * - `--quiet`: errors only;
 * - a progress bar only when stderr is a terminal: run under a pseudo-terminal (`script` from
 *   util-linux) it appears; piped, it does not.
 */
import { spawn, spawnSync } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, BIN, describeRun, makeWorkspace, type Workspace } from '../helpers/cli.js';
import { startLockHolder } from '../helpers/lock-holder.js';
import { type SmtpSink, startSmtpSink } from '../helpers/smtp-sink.js';

interface Line {
  time: string;
  level: 'debug' | 'info' | 'warn' | 'error';
  event: string;
  message: string;
  [field: string]: unknown;
}

let sink: SmtpSink;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  assertBuilt();
  sink = await startSmtpSink({
    faults: [
      { to: 'bounce1@example.net', fault: { kind: 'rejectRcpt', code: 550, text: '5.1.1 user unknown' } },
      // Not a hard bounce: one of two is 50 %, over the failure rate that needs a person.
      {
        to: 'policy1@example.net',
        fault: { kind: 'rejectRcpt', code: 550, text: '5.7.1 message refused by local policy' },
      },
    ],
  });
});
afterAll(async () => sink?.close());
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function workspace(recipients = 3, prefix = 'reader'): Promise<Workspace> {
  const ws = await makeWorkspace('newsletter-logs-');
  cleanups.push(() => ws.cleanup());
  ws.env.NEWSLETTER_TRANSPORT = sink.url;
  await ws.ok(['init']);
  const { file } = await ws.writeCsv(recipients, { prefix });
  await ws.ok(['recipients', 'import', file, '--list', 'readers']);
  return ws;
}

/** Every stderr line must be one JSON object with the four common fields. */
function jsonLines(stderr: string): Line[] {
  const lines = stderr.split('\n').filter(Boolean);
  return lines.map((line) => {
    const parsed = JSON.parse(line) as Line;
    expect(parsed).toMatchObject({
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT[\d:.]+Z$/),
      level: expect.stringMatching(/^(debug|info|warn|error)$/),
      event: expect.any(String),
      message: expect.any(String),
    });
    return parsed;
  });
}

/** What systemd sets for a unit's processes (systemd.exec(5)); either one means "the journal". */
const UNDER_SYSTEMD = [
  { name: 'JOURNAL_STREAM', env: { JOURNAL_STREAM: '8:123456' } },
  { name: 'INVOCATION_ID', env: { INVOCATION_ID: '0f1e2d3c4b5a69788796a5b4c3d2e1f0' } },
];

describe('send-due logs', () => {
  it('prints nothing under a non-terminal when there is nothing to do, whatever the format', async () => {
    const ws = await workspace(1);
    for (const args of [[], ['--log-format', 'json'], ['--log-format', 'text']]) {
      const result = await ws.run([...args, 'send-due']);
      expect(result, describeRun(['send-due', ...args], result)).toMatchObject({
        code: 0,
        stdout: '',
        stderr: '',
      });
    }
    // And nothing after a successful send either, unless --verbose.
    await ws.createDue();
    const sent = await ws.run(['send-due']);
    expect(sent).toMatchObject({ code: 0, stdout: '', stderr: '' });
  });

  it.each(UNDER_SYSTEMD)(
    '--verbose under systemd ($name): JSON lines, one per event, in order',
    async ({ env }) => {
      const ws = await workspace(3);
      await ws.createDue();
      const result = await ws.run(['--verbose', 'send-due'], { env });
      expect(result.code, describeRun(['send-due'], result)).toBe(0);
      const lines = jsonLines(result.stderr);
      const events = lines.map((line) => line.event);
      expect(events[0]).toBe('run-started');
      expect(events.at(-1)).toBe('run-ended');
      expect(events).toEqual(
        expect.arrayContaining(['newsletter-built', 'batch-claimed', 'outcomes-recorded', 'newsletter-sent']),
      );
      const started = lines[0]!;
      expect(started).toMatchObject({
        level: 'info',
        hostId: 'test-host-a',
        runId: expect.any(Number),
        pid: expect.any(Number),
      });
      expect(started.message).toMatch(/^run \d+ started \(host test-host-a, pid \d+\)$/);
      expect(lines.find((line) => line.event === 'outcomes-recorded')).toMatchObject({ sent: 3, failed: 0 });
      // stdout keeps the summary only.
      expect(result.stdout).toMatch(/^run \d+: 3 sent/);
    },
  );

  it('--log-format text: one readable line per event', async () => {
    const ws = await workspace(2);
    await ws.createDue();
    const result = await ws.run(['--verbose', '--log-format', 'text', 'send-due']);
    expect(result.code).toBe(0);
    const lines = result.stderr.split('\n').filter(Boolean);
    expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z run \d+ started \(host test-host-a, pid \d+\)$/);
    expect(lines.at(-1)).toMatch(/Z run \d+ ended: ok$/);
  });

  it('under cron (no terminal, no JOURNAL_STREAM): text, a readable paragraph, never JSON', async () => {
    const ws = await workspace(2, 'policy');
    await ws.createDue();
    const result = await ws.run(['send-due']);
    expect(result.code, describeRun(['send-due'], result)).toBe(8);
    expect(result.stdout).toBe('');
    const lines = result.stderr.split('\n').filter(Boolean);
    expect(lines.filter((line) => line.trimStart().startsWith('{'))).toEqual([]);
    // What happened, then what to do.
    expect(lines[0]).toBe('error: send-due finished, but too many recipients failed.');
    expect(lines[1]).toMatch(/^ {2}run \d+: 1 sent, 1 failed, 0 to retry, 0 unknown, 0 skipped$/);
    expect(lines[2]).toMatch(
      /^ {2}1 of 2 attempts \(50 %\) failed .*: the relay or the list may be broken\. Read the replies with `newsletter show ID`/,
    );
    expect(lines).toHaveLength(3);
  });

  it.each(UNDER_SYSTEMD)(
    'a run that needs a person under systemd ($name): JSON lines, ending with run-failed and its exit code',
    async ({ env }) => {
      const ws = await workspace(2, 'policy');
      await ws.createDue();
      const result = await ws.run(['send-due'], { env });
      expect(result.code, describeRun(['send-due'], result)).toBe(8);
      expect(result.stdout).toBe('');
      const lines = jsonLines(result.stderr);
      const failed = lines.at(-1)!;
      expect(failed).toMatchObject({
        level: 'error',
        event: 'run-failed',
        exitCode: 8,
        runId: expect.any(Number),
      });
      expect(failed.details).toEqual(expect.arrayContaining([expect.stringContaining('1 sent, 1 failed')]));
      // Without --verbose, only warnings and errors.
      expect(lines.every((line) => line.level === 'warn' || line.level === 'error')).toBe(true);
    },
  );

  it('--quiet keeps the errors only', async () => {
    const ws = await workspace(2, 'policy');
    await ws.createDue();
    const result = await ws.run(['--quiet', '--log-format', 'json', 'send-due']);
    expect(result.code).toBe(8);
    const lines = jsonLines(result.stderr);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.every((line) => line.level === 'error')).toBe(true);
  });

  it('a suppressed hard bounce under cron: exit 0 and nothing printed', async () => {
    const ws = await workspace(2, 'bounce');
    await ws.createDue();
    expect(await ws.run(['send-due'])).toMatchObject({ code: 0, stdout: '', stderr: '' });
  });

  it('lock held: silent under cron, one lock-held line with --verbose', async () => {
    const ws = await workspace(1);
    await ws.createDue();
    const holder = await startLockHolder({
      databasePath: ws.db,
      lockPath: `${ws.db}.lock`,
      staleMs: 120_000,
      updateMs: 10_000,
    });
    try {
      expect(await ws.run(['send-due'])).toMatchObject({ code: 6, stdout: '', stderr: '' });
      const verbose = await ws.run(['--verbose', 'send-due']);
      expect(verbose.code).toBe(6);
      expect(verbose.stderr).toMatch(/^error: .*/);
      const journal = await ws.run(['--verbose', 'send-due'], { env: { JOURNAL_STREAM: '8:123456' } });
      expect(journal.code).toBe(6);
      expect(jsonLines(journal.stderr)).toEqual([
        expect.objectContaining({ event: 'lock-held', level: 'warn', exitCode: 6 }),
      ]);
    } finally {
      await holder.kill();
    }
  });
});

/** A word for `sh -c`, quoted. */
const quote = (word: string) => `'${word.replace(/'/g, `'\\''`)}'`;

const hasScript = spawnSync('script', ['--version'], { stdio: 'ignore' }).status === 0;

/** Runs the CLI under a pseudo-terminal (stdin, stdout and stderr are a tty); returns what it drew. */
function underTerminal(ws: Workspace, args: string[]): Promise<{ code: number | null; output: string }> {
  const command = [process.execPath, BIN, ...args].map(quote).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qfec', command, '/dev/null'], {
      cwd: ws.dir,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: ws.dir, TERM: 'xterm', ...ws.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('the progress bar', () => {
  it('send-due draws it on a terminal, and not when stderr is a pipe', async () => {
    if (!hasScript)
      throw new Error('needs `script` (util-linux) for a pseudo-terminal: apt-get install util-linux');
    const ws = await workspace(4);
    await ws.createDue();
    const tty = await underTerminal(ws, ['send-due']);
    expect(tty.code, tty.output).toBe(0);
    expect(tty.output).toMatch(/sending \S+ 4\/4 recipients \| 100%/);
    expect(tty.output).toContain('\u2588');

    await ws.createDue();
    const piped = await ws.run(['send-due']);
    expect(piped).toMatchObject({ code: 0, stdout: '', stderr: '' });

    // On a terminal but with JSON logs asked for: no bar either.
    await ws.createDue();
    const json = await underTerminal(ws, ['--log-format', 'json', 'send-due']);
    expect(json.code).toBe(0);
    expect(json.output).not.toContain('recipients |');
  });

  it('an idle send-due says so on a terminal; piped, or to /dev/null (a character device), it is silent', async () => {
    if (!hasScript)
      throw new Error('needs `script` (util-linux) for a pseudo-terminal: apt-get install util-linux');
    const ws = await workspace(1);
    await ws.createDue();
    expect(await ws.run(['send-due'])).toMatchObject({ code: 0, stdout: '', stderr: '' });
    // Nothing is due now. The cron fast path must not answer for a person at a terminal.
    const tty = await underTerminal(ws, ['send-due']);
    expect(tty.code, tty.output).toBe(0);
    expect(tty.output).toContain('Nothing is due.');
    const piped = await ws.run(['send-due']);
    expect(piped).toMatchObject({ code: 0, stdout: '', stderr: '' });
    const devNull = spawnSync(
      'sh',
      ['-c', `${[process.execPath, BIN, 'send-due'].map(quote).join(' ')} > /dev/null`],
      {
        cwd: ws.dir,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: ws.dir, ...ws.env },
        encoding: 'utf8',
      },
    );
    expect(devNull.status, devNull.stderr).toBe(0);
    expect(devNull.stderr).toBe('');
  });

  it('recipients import draws it on a terminal only', async () => {
    if (!hasScript)
      throw new Error('needs `script` (util-linux) for a pseudo-terminal: apt-get install util-linux');
    const ws = await workspace(1);
    const { file } = await ws.writeCsv(25, { prefix: 'more' });
    const tty = await underTerminal(ws, ['recipients', 'import', file]);
    expect(tty.code, tty.output).toBe(0);
    expect(tty.output).toMatch(/importing \S+ 25\/25 rows \| 100%/);
    const { file: again } = await ws.writeCsv(5, { prefix: 'again' });
    const piped = await ws.ok(['recipients', 'import', again]);
    expect(piped.stderr).toBe('');
  });
});
