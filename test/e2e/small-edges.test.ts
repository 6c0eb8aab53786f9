/**
 * Issue 13's smaller edges through the built CLI, each checked where it would do harm and each
 * refusal checked to change nothing:
 *
 * - header lines stay within RFC 5322's 998 octets with a 1,500-character subject and a long
 *   `{{name}}` without spaces (the sent .eml read back by mailparser, the values intact);
 * - `create --from` and NEWSLETTER_FROM must be an address (exit 4 and 3);
 * - an address starting with `-` (an option to sendmail) is refused by `recipients add` (exit 4)
 *   and by `recipients import` (the line named);
 * - `href=" {{website}}"` cannot smuggle `javascript:` past the scheme check;
 * - a client that hangs up mid-POST on `serve` is not an error-level log line.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import { simpleParser } from 'mailparser';
import { describe, expect, it } from 'vitest';
import { describeRun, type Workspace } from '../helpers/cli.js';
import { startCli } from '../helpers/cli-process.js';
import { workspacesReapingChildren } from '../helpers/e2e-workspaces.js';

const initialised = workspacesReapingChildren('newsletter-edges-', { init: true });

async function workspace(csv = 'email,name\nann@example.net,Ann\n'): Promise<Workspace> {
  const ws = await initialised();
  await ws.write('readers.csv', csv);
  await ws.ok(['recipients', 'import', 'readers.csv', '--list', 'readers']);
  return ws;
}

function createArgs(ws: Workspace, subject: string, template = 'welcome.mjml'): string[] {
  const templates = ws.copyTemplates();
  return ['create', '--subject', subject, '--template', path.join(templates, template), '--list', 'readers'];
}

async function newsletters(ws: Workspace): Promise<unknown[]> {
  return ws.json<unknown[]>(['list', '--json']);
}

/** Sends what is due to `file:./outbox` and parses every message written. */
async function sendToOutbox(ws: Workspace) {
  const env = { NEWSLETTER_TRANSPORT: 'file:./outbox' };
  const run = await ws.run(['send-due'], { env });
  expect(run.code, describeRun(['send-due'], run)).toBe(0);
  const outbox = ws.path('outbox');
  const files = readdirSync(outbox).filter((name) => name.endsWith('.eml'));
  return Promise.all(
    files.map(async (name) => {
      const bytes = readFileSync(path.join(outbox, name));
      const head = bytes.subarray(0, bytes.indexOf('\r\n\r\n')).toString('latin1');
      return {
        longestHeaderLine: Math.max(...head.split('\r\n').map((line) => line.length)),
        mail: await simpleParser(bytes),
      };
    }),
  );
}

describe('over-long header lines', () => {
  it('a 1,500-character subject and a 1,200-letter {{name}} go out folded within 998 octets, intact', async () => {
    const name = 'N'.repeat(1200);
    const ws = await workspace(`email,name\nann@example.net,${name}\n`);
    const subject = `${'S'.repeat(1500)} for {{name}}`;
    const created = await ws.run([...createArgs(ws, subject), '--at', 'now']);
    expect(created.code, describeRun(['create'], created)).toBe(0);

    const sent = await sendToOutbox(ws);
    expect(sent).toHaveLength(1);
    expect(sent[0]?.longestHeaderLine).toBeLessThanOrEqual(998);
    expect(sent[0]?.mail.subject).toBe(`${'S'.repeat(1500)} for ${name}`);
  });
});

describe('From must be an address', () => {
  it.each([
    ['@', "nothing before the '@'"],
    ['nonsense@', "nothing after the '@'"],
  ])(
    'create --from %j is refused with exit 4, naming the problem and the fix; nothing is created',
    async (from, problem) => {
      const ws = await workspace();
      const args = [...createArgs(ws, 'Hello'), '--from', from];
      const result = await ws.run(args);
      expect(result.code, describeRun(args, result)).toBe(4);
      expect(result.stderr).toContain(
        `--from is not a usable address: ${JSON.stringify(from)} has ${problem}`,
      );
      expect(result.stderr).toContain('use e.g. "News <news@example.org>"');
      expect(await newsletters(ws)).toEqual([]);
    },
  );

  it('NEWSLETTER_FROM=nonsense@ is a configuration error (exit 3) naming the variable', async () => {
    const ws = await workspace();
    const args = createArgs(ws, 'Hello');
    const result = await ws.run(args, { env: { NEWSLETTER_FROM: 'nonsense@' } });
    expect(result.code, describeRun(args, result)).toBe(3);
    expect(result.stderr).toContain(
      `NEWSLETTER_FROM is not a usable address: "nonsense@" has nothing after the '@'`,
    );
    expect(await newsletters(ws)).toEqual([]);
  });
});

describe('addresses starting with "-"', () => {
  it('recipients add refuses one with exit 4 and adds nothing', async () => {
    const ws = await workspace();
    const args = ['recipients', 'add', '--list', 'readers', '--', '-X/tmp/log@example.net'];
    const result = await ws.run(args);
    expect(result.code, describeRun(args, result)).toBe(4);
    expect(result.stderr).toContain(`"-X/tmp/log@example.net" starts with '-'`);
    const list = await ws.json<Array<{ email: string }>>(['recipients', 'list', '--json']);
    expect(list.map((row) => row.email)).toEqual(['ann@example.net']);
  });

  it('recipients import names the line and imports nothing', async () => {
    const ws = await workspace();
    await ws.write('more.csv', 'email,name\nbob@example.net,Bob\n-oQ/tmp/x@example.net,Eve\n');
    const args = ['recipients', 'import', 'more.csv', '--list', 'readers'];
    const result = await ws.run(args);
    expect(result.code, describeRun(args, result)).toBe(4);
    expect(result.stderr).toMatch(/line 3: "-oQ\/tmp\/x@example\.net" starts with '-'/);
    const list = await ws.json<Array<{ email: string }>>(['recipients', 'list', '--json']);
    expect(list.map((row) => row.email)).toEqual(['ann@example.net']);
  });
});

describe('a URL field after a leading space', () => {
  it('href=" {{website}}" with a javascript: value is neutralised in the sent HTML', async () => {
    const ws = await workspace('email,name,website\nann@example.net,Ann,javascript:alert(document.cookie)\n');
    const templates = ws.copyTemplates();
    const source = readFileSync(path.join(templates, 'welcome.mjml'), 'utf8').replace(
      '<mj-button href="https://example.org/archive">',
      '<mj-text><a href=" {{website}}">our site</a></mj-text><mj-button href="\t{{website}}">',
    );
    await ws.write('templates/hostile.mjml', source);
    const args = createArgs(ws, 'Hello', 'hostile.mjml');
    const created = await ws.run([...args, '--at', 'now']);
    expect(created.code, describeRun(args, created)).toBe(0);

    const sent = await sendToOutbox(ws);
    const html = sent[0]?.mail.html || '';
    expect(html).toContain('unsafe:javascript:alert');
    expect(html).not.toMatch(/href="\s*javascript:/i);
  });
});

describe('serve and a client that hangs up', () => {
  it('an aborted POST is logged below error level, and the server keeps answering', async () => {
    const ws = await workspace();
    const child = startCli(['serve', '--port', '0', '--verbose', '--log-format', 'json'], {
      cwd: ws.dir,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: ws.dir, ...ws.env },
      timeoutMs: 60_000,
    });
    const deadline = Date.now() + 15_000;
    let base = '';
    while (!base) {
      base = /listening on (http:\/\/[^\s/]+)\/u\//.exec(child.stdout() + child.stderr())?.[1] ?? '';
      if (!base && (!child.running() || Date.now() > deadline))
        throw new Error(`serve did not start: ${child.stderr()}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const { hostname, port } = new URL(base);

    // A real client that promises 26 bytes, sends 10, and closes the connection.
    await new Promise<void>((resolve, reject) => {
      const socket = connect(Number(port), hostname, () => {
        socket.write(
          'POST /u/abc HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 26\r\n\r\nList-Unsub',
          () => setTimeout(() => socket.destroy(), 50),
        );
      });
      socket.once('close', () => resolve());
      socket.once('error', reject);
    });
    // The server still answers, and by then it has handled the aborted request.
    const next = await fetch(`${base}/nowhere`);
    expect(next.status).toBe(404);

    child.signal('SIGTERM');
    const result = await child.exited;
    const lines = `${result.stdout}\n${result.stderr}`
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { level: string; event: string });
    expect(
      lines.filter((line) => line.level === 'error'),
      result.stderr,
    ).toEqual([]);
    expect(lines.find((line) => line.event === 'client-gone')?.level, result.stderr).toBe('debug');
  });
});
