/**
 * Issue 14's small surprises, through the built CLI, each refusal checked to change nothing:
 *
 * - `create --at` and `schedule --at` a time in the past: exit 4 naming the time and `--now`;
 * - `recipients add EMAIL --list L` without `--name` keeps an existing subscriber's name;
 * - `recipients list` says on stderr when it stopped at the limit, pages with `--after`, and an
 *   unknown `--list` is exit 4 naming it;
 * - `send-due --dry-run` prints its text report through a pipe;
 * - drafts show in `list` and `status`, and `send-due --verbose` counts them when nothing is due.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { simpleParser } from 'mailparser';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, describeRun, makeWorkspace, type Workspace } from '../helpers/cli.js';

const cleanups: Array<() => Promise<void>> = [];

beforeAll(() => {
  assertBuilt();
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function workspace(csv = 'email,name\nann@example.net,Ann\n'): Promise<Workspace> {
  const ws = await makeWorkspace('newsletter-issue14-');
  cleanups.push(() => ws.cleanup());
  await ws.ok(['init']);
  await ws.write('readers.csv', csv);
  await ws.ok(['recipients', 'import', 'readers.csv', '--list', 'readers']);
  return ws;
}

const createArgs = (ws: Workspace) => [
  'create',
  '--subject',
  'Hello {{name}}',
  '--template',
  path.join(ws.copyTemplates(), 'welcome.mjml'),
  '--list',
  'readers',
];

type Shown = { id: number; status: string; scheduledAt: string | null };

describe('--at in the past', () => {
  it('create refuses it (exit 4, the time and --now named) and creates nothing; --now works', async () => {
    const ws = await workspace();
    const args = createArgs(ws);
    for (const at of ['2025-01-01 09:00', '2020-06-01T09:00Z']) {
      const refused = await ws.run([...args, '--at', at]);
      expect(refused.code, describeRun([...args, '--at', at], refused)).toBe(4);
      expect(refused.stderr).toContain(`--at "${at}"`);
      expect(refused.stderr).toMatch(/in the past/);
      expect(refused.stderr).toContain('--now');
      expect(refused.stdout).toBe('');
    }
    expect(await ws.json<unknown[]>(['list', '--json'])).toEqual([]);

    const now = await ws.json<Shown>([...args, '--now', '--json']);
    expect(now.status).toBe('scheduled');
    const later = await ws.json<Shown>([...args, '--at', '+2h', '--json']);
    expect(later.status).toBe('scheduled');
    const both = await ws.run([...args, '--now', '--at', '+2h']);
    expect(both.code).toBe(2);
  });

  it('schedule refuses it (exit 4) and leaves the newsletter as it was; --now still works', async () => {
    const ws = await workspace();
    const draft = await ws.json<Shown>([...createArgs(ws), '--json']);
    expect(draft.status).toBe('draft');
    const before = ws.dbDigest();
    const refused = await ws.run(['schedule', String(draft.id), '--at', '2020-01-01 09:00']);
    expect(refused.code, describeRun(['schedule'], refused)).toBe(4);
    expect(refused.stderr).toContain('--at "2020-01-01 09:00"');
    expect(refused.stderr).toMatch(/2020-01-01 \d\d:\d\d/);
    expect(refused.stderr).toContain('--now');
    expect(ws.dbDigest()).toEqual(before);
    expect((await ws.json<Shown>(['show', String(draft.id), '--json'])).status).toBe('draft');

    await ws.ok(['schedule', String(draft.id), '--now']);
    expect((await ws.json<Shown>(['show', String(draft.id), '--json'])).status).toBe('scheduled');
  });
});

describe('recipients add without --name', () => {
  it('keeps the name of an existing subscriber; --name still changes it', async () => {
    const ws = await workspace('email,name\nann@example.net,Ann Example\n');
    await ws.ok(['recipients', 'add', 'ann@example.net', '--list', 'partners']);
    type Row = { email: string; name: string; lists: string[] };
    const [ann] = await ws.json<Row[]>(['recipients', 'list', '--json']);
    expect(ann).toMatchObject({ name: 'Ann Example', lists: ['partners', 'readers'].sort() });

    // The next send greets her by name, not "Hello ,".
    ws.env.NEWSLETTER_TRANSPORT = 'file:./outbox';
    await ws.ok([...createArgs(ws).slice(0, -1), 'partners', '--now']);
    await ws.ok(['send-due']);
    const [eml] = readdirSync(ws.path('outbox'));
    const sent = await simpleParser(readFileSync(ws.path('outbox', eml as string)));
    expect(sent.subject).toBe('Hello Ann Example');
    expect(sent.text).toContain('Welcome, Ann Example');

    await ws.ok(['recipients', 'add', 'ann@example.net', '--name', 'Ann E.']);
    expect((await ws.json<Row[]>(['recipients', 'list', '--json']))[0]?.name).toBe('Ann E.');
    // A new subscriber without --name has none.
    await ws.ok(['recipients', 'add', 'bob@example.net', '--list', 'partners']);
    const rows = await ws.json<Row[]>(['recipients', 'list', '--list', 'partners', '--json']);
    expect(rows.find((r) => r.email === 'bob@example.net')?.name).toBe('');
  });
});

describe('recipients list', () => {
  const csv = `email,name\n${[1, 2, 3, 4, 5].map((i) => `r${i}@example.net,R ${i}`).join('\n')}\n`;

  it('says on stderr when it stopped at the limit, and --after shows the next page', async () => {
    const ws = await workspace(csv);
    type Row = { id: number; email: string };
    const first = await ws.run(['recipients', 'list', '--limit', '2', '--json']);
    expect(first.code).toBe(0);
    const page1 = JSON.parse(first.stdout) as Row[];
    expect(page1.map((r) => r.email)).toEqual(['r1@example.net', 'r2@example.net']);
    expect(first.stderr).toContain(`showing the first 2; more with --after ${page1[1]?.id}`);

    const second = await ws.run(['recipients', 'list', '--limit', '2', '--after', String(page1[1]?.id)]);
    expect(second.code).toBe(0);
    expect(second.stdout).toContain('r3@example.net');
    expect(second.stdout).toContain('r4@example.net');
    expect(second.stdout).not.toContain('r2@example.net');
    expect(second.stderr).toMatch(/more with --after \d+/);

    // The last page is not full, or ends exactly at the end: nothing said.
    const all = await ws.run(['recipients', 'list', '--limit', '5']);
    expect(all).toMatchObject({ code: 0, stderr: '' });
    expect(all.stdout).toContain('r5@example.net');
  });

  it('an unknown --list is exit 4 naming it, not an empty table', async () => {
    const ws = await workspace(csv);
    const refused = await ws.run(['recipients', 'list', '--list', 'doesnotexist']);
    expect(refused.code, describeRun(['recipients', 'list'], refused)).toBe(4);
    expect(refused.stderr).toContain('"doesnotexist"');
    expect(refused.stderr).toContain('readers');
    expect(refused.stdout).toBe('');
  });
});

describe('drafts and the dry run', () => {
  it('list and status show drafts; send-due --verbose and the dry run count them; the dry run reports in a pipe', async () => {
    const ws = await workspace();
    ws.env.NEWSLETTER_TRANSPORT = 'file:./outbox';
    const draft = await ws.json<Shown>([...createArgs(ws), '--json']);

    const listed = await ws.ok(['list']);
    expect(listed.stdout).toMatch(new RegExp(`${draft.id}\\s+draft`));

    const status = await ws.json<{ drafts: unknown[] }>(['status', '--json']);
    expect(Object.keys(status).at(-1)).toBe('drafts');
    expect(status.drafts).toEqual([
      {
        id: draft.id,
        subject: 'Hello {{name}}',
        lists: ['readers'],
        createdAt: expect.any(String),
        audience: 1,
      },
    ]);
    const screen = await ws.ok(['status']);
    expect(screen.stdout).toContain('Drafts (1');
    expect(screen.stdout).toContain(`#${draft.id} Hello {{name}}`);

    const verbose = await ws.run(['--verbose', 'send-due']);
    expect(verbose.code).toBe(0);
    expect(verbose.stdout).toContain('Nothing is due (1 draft not scheduled).');
    // Cron (no terminal, no --verbose) still hears nothing.
    expect(await ws.run(['send-due'])).toMatchObject({ code: 0, stdout: '', stderr: '' });

    // The dry run reports through a pipe: nothing due, then the scheduled newsletter.
    expect((await ws.run(['send-due', '--dry-run'])).stdout).toBe(
      'Dry run: nothing is due (1 draft not scheduled).\n',
    );
    await ws.ok(['schedule', String(draft.id), '--now']);
    const dry = await ws.run(['send-due', '--dry-run']);
    expect(dry.code, describeRun(['send-due', '--dry-run'], dry)).toBe(0);
    // The line also says when it is due, which template version, and the audience's size.
    const line = `ok  newsletter ${draft.id} \\(Hello \\{\\{name\\}\\}, scheduled[^)]*\\): audience 1, would send 1, skip 0`;
    expect(dry.stdout).toMatch(new RegExp(line));
  });
});
