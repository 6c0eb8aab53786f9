/**
 * The starter templates outside a checkout of the project (issue 15, "Packaging"): after
 * `npm install -g` they live under the npm prefix, so `templates init DIR` copies them out, and
 * `create --template` with a relative path that is not there says where they are and how to get
 * them. An edited template is never overwritten without --force, and a refusal copies nothing.
 * (test/install/ runs the same commands from a real global install.)
 */
import { existsSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, describeRun, makeWorkspace, TEMPLATES, type Workspace } from '../helpers/cli.js';

const cleanups: Array<() => Promise<void>> = [];

beforeAll(() => {
  assertBuilt();
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function workspace(): Promise<Workspace> {
  const ws = await makeWorkspace('newsletter-templates-');
  cleanups.push(() => ws.cleanup());
  return ws;
}

const STARTERS = [
  'README.md',
  'monthly-digest.mjml',
  'partials/footer.mjml',
  'partials/head.mjml',
  'welcome.mjml',
];

describe('templates init', () => {
  it('copies the starter templates and partials into a new folder, ready for create', async () => {
    const ws = await workspace();
    const args = ['templates', 'init', 'mine'];
    const result = await ws.run(args);
    expect(result.code, describeRun(args, result)).toBe(0);
    for (const file of STARTERS) {
      expect(readFileSync(ws.path('mine', file), 'utf8'), file).toBe(
        readFileSync(path.join(TEMPLATES, file), 'utf8'),
      );
    }
    expect(result.stdout).toContain('--template mine/welcome.mjml');

    await ws.ok(['init']);
    await ws.write('readers.csv', 'email,name,city\nada@example.org,Ada,London\n');
    await ws.ok(['recipients', 'import', 'readers.csv', '--list', 'readers']);
    // The partials came along: the digest includes both.
    const created = await ws.run([
      'create',
      '--subject',
      'Hi',
      '--template',
      'mine/monthly-digest.mjml',
      '--list',
      'readers',
    ]);
    expect(created.code, describeRun(['create'], created)).toBe(0);
  });

  it('refuses to overwrite an existing file (exit 4, naming it) and copies nothing', async () => {
    const ws = await workspace();
    await ws.ok(['templates', 'init', 'mine']);
    writeFileSync(ws.path('mine', 'welcome.mjml'), '<mjml>edited</mjml>');
    rmSync(ws.path('mine', 'partials'), { recursive: true });

    const result = await ws.run(['templates', 'init', 'mine']);
    expect(result.code).toBe(4);
    expect(result.stderr).toContain(`${ws.path('mine', 'README.md')} already exists: nothing was copied.`);
    expect(result.stderr).toContain('welcome.mjml');
    expect(result.stderr).toContain('--force');
    expect(readFileSync(ws.path('mine', 'welcome.mjml'), 'utf8')).toBe('<mjml>edited</mjml>');
    expect(existsSync(ws.path('mine', 'partials')), 'nothing copied, not even what was missing').toBe(false);
  });

  it('refuses a file where a folder goes (exit 4), even with --force', async () => {
    const ws = await workspace();
    await ws.write('mine', 'a file, not a folder');
    const result = await ws.run(['templates', 'init', 'mine', '--force']);
    expect(result.code, describeRun(['templates', 'init'], result)).toBe(4);
    expect(result.stderr).toContain(`${ws.path('mine')} is not a folder: nothing was copied.`);
  });

  it('with --force replaces the starter files, and a symlink in the way is replaced, not followed', async () => {
    const ws = await workspace();
    await ws.ok(['templates', 'init', 'mine']);
    writeFileSync(ws.path('mine', 'welcome.mjml'), '<mjml>edited</mjml>');
    writeFileSync(ws.path('mine', 'mine-only.mjml'), '<mjml>kept</mjml>');
    const outside = ws.path('outside.txt');
    writeFileSync(outside, 'not a template');
    rmSync(ws.path('mine', 'README.md'));
    symlinkSync(outside, ws.path('mine', 'README.md'));

    await ws.ok(['templates', 'init', 'mine', '--force']);
    expect(readFileSync(ws.path('mine', 'welcome.mjml'), 'utf8')).toBe(
      readFileSync(path.join(TEMPLATES, 'welcome.mjml'), 'utf8'),
    );
    expect(readFileSync(ws.path('mine', 'mine-only.mjml'), 'utf8')).toBe('<mjml>kept</mjml>');
    expect(readFileSync(outside, 'utf8')).toBe('not a template');
    expect(readdirSync(ws.path('mine')).sort()).toEqual([
      'README.md',
      'mine-only.mjml',
      'monthly-digest.mjml',
      'partials',
      'welcome.mjml',
    ]);
  });
});

describe('create --template with a relative path that is not there', () => {
  it('says where the starter templates are and suggests templates init', async () => {
    const ws = await workspace();
    await ws.ok(['init']);
    await ws.write('readers.csv', 'email,name,city\nada@example.org,Ada,London\n');
    await ws.ok(['recipients', 'import', 'readers.csv', '--list', 'readers']);
    const args = [
      'create',
      '--subject',
      'Hi',
      '--template',
      'templates/monthly-digest.mjml',
      '--list',
      'readers',
    ];
    const result = await ws.run(args);
    expect(result.code, describeRun(args, result)).toBe(4);
    expect(result.stderr).toContain('--template templates/monthly-digest.mjml: no such file.');
    expect(result.stderr).toContain(`ship with newsletter in ${TEMPLATES}.`);
    expect(result.stderr).toContain('newsletter templates init templates');

    // The suggestion, followed, makes the same command work as typed.
    await ws.ok(['templates', 'init', 'templates']);
    await ws.ok(args);
  });
});
