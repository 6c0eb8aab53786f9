/**
 * Promise 5 as cron sees it: stdout is a pipe, not a terminal. Nothing due → exit 0 and not a
 * byte on stdout or stderr (cron mails any output), and without loading MJML or nodemailer (slow
 * to load, every minute). A successful send is just as quiet unless --verbose, and needs no MJML
 * either when `create` kept the HTML it compiled.
 *
 * Which modules a run loads is recorded by a real module hook (node:module `register`, `load`),
 * preloaded with `--import`: every ESM and CommonJS entry that goes through the ESM loader,
 * which is how the CLI imports nodemailer; and, at exit, by a `--require` preload that lists
 * Node's CommonJS cache, which is how mjml is loaded (src/render/mjml-loader.ts, `require`). A due
 * run is the control: the same tracer must see both there, or the idle assertion would prove
 * nothing. The idle run never reaches the
 * ESM loader after the bin: it is answered from one bundled CommonJS file, whose requires
 * test/e2e/idle-bundle.test.ts lists.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, closedPort, describeRun, makeWorkspace, type Workspace } from '../helpers/cli.js';
import { type SmtpSink, startSmtpSink } from '../helpers/smtp-sink.js';

let ws: Workspace;
let sink: SmtpSink;
let tracer: { preload: string; requires: string; out: (name: string) => string };

beforeAll(async () => {
  assertBuilt();
  ws = await makeWorkspace('newsletter-cron-');
  sink = await startSmtpSink();
  tracer = writeTracer(ws);
  await ws.ok(['init']);
  const { file } = await ws.writeCsv(3);
  await ws.ok(['recipients', 'import', file, '--list', 'readers']);
});

afterAll(async () => {
  await sink?.close();
  await ws?.cleanup();
});

function writeTracer(workspace: Workspace) {
  const hooks = workspace.path('trace-hooks.mjs');
  writeFileSync(
    hooks,
    `import { appendFileSync } from 'node:fs';
let out;
export function initialize(data) { out = data.out; }
export async function load(url, context, nextLoad) {
  appendFileSync(out, url + '\\n');
  return nextLoad(url, context);
}
`,
  );
  const preload = workspace.path('trace-register.mjs');
  writeFileSync(
    preload,
    `import { register } from 'node:module';
register(${JSON.stringify(pathToFileURL(hooks).href)}, { data: { out: process.env.TRACE_OUT } });
`,
  );
  // CommonJS modules required by CommonJS (mjml's whole tree) never reach the ESM hooks.
  const requires = workspace.path('trace-require.cjs');
  writeFileSync(
    requires,
    `const { appendFileSync } = require('node:fs');
process.on('exit', () => {
  appendFileSync(process.env.TRACE_OUT + '.cjs', Object.keys(require.cache).join('\\n') + '\\n');
});
`,
  );
  return {
    preload: pathToFileURL(preload).href,
    requires,
    out: (name: string) => workspace.path(`${name}.trace`),
  };
}

/** Runs send-due with the tracer; returns the result and the URLs of every module it loaded. */
async function tracedSendDue(name: string, args: string[], env: Record<string, string>) {
  const out = tracer.out(name);
  writeFileSync(out, '');
  writeFileSync(`${out}.cjs`, '');
  const result = await ws.run(['send-due', ...args], {
    env: { ...env, TRACE_OUT: out },
    nodeArgs: ['--require', tracer.requires, '--import', tracer.preload],
  });
  const loaded = readFileSync(out, 'utf8').split('\n').filter(Boolean);
  // File paths, as Node's CommonJS cache holds them.
  const required = readFileSync(`${out}.cjs`, 'utf8').split('\n').filter(Boolean);
  return { result, loaded, required };
}

const fromPackage = (loaded: string[], name: string) =>
  loaded.filter((url) => url.includes(`/node_modules/${name}/`));
const requiredFrom = (required: string[], name: string) =>
  required.filter((file) => file.includes(`${path.sep}node_modules${path.sep}${name}${path.sep}`));

const create = (at: string) =>
  ws.json<{ id: number }>([
    'create',
    '--subject',
    'Hello {{name}}',
    '--template',
    path.join(ws.copyTemplates(), 'welcome.mjml'),
    '--list',
    'readers',
    '--at',
    at,
    '--json',
  ]);

describe('send-due under cron (stdout is not a terminal)', () => {
  it('nothing due: exit 0, no output at all, no run recorded, and neither mjml nor nodemailer loaded', async () => {
    // A newsletter exists but is not due yet; the transport points at a port nobody listens on.
    await create('+2h');
    const env = { NEWSLETTER_TRANSPORT: `smtp://127.0.0.1:${await closedPort()}` };
    const { result, loaded, required } = await tracedSendDue('idle', [], env);
    expect(result, describeRun(['send-due'], result)).toMatchObject({ code: 0, stdout: '', stderr: '' });
    // The tracer worked: it saw the CLI start. And the quick path answered: the program itself
    // (dist/cli/main.js, commander, the engine) was never loaded.
    expect(loaded.some((url) => url.endsWith('/bin/newsletter.js'))).toBe(true);
    expect(loaded.filter((url) => url.includes('/dist/'))).toEqual([]);
    expect(fromPackage(loaded, 'mjml')).toEqual([]);
    expect(requiredFrom(required, 'mjml')).toEqual([]);
    expect(fromPackage(loaded, 'nodemailer')).toEqual([]);
    expect(loaded.filter((url) => /\/dist\/(render|transport)\//.test(url))).toEqual([]);
    expect(await ws.json(['runs', '--json'])).toEqual([]);

    // A dry run is asked for by a person or CI, not cron: it reports, even through a pipe.
    const dry = await ws.run(['send-due', '--dry-run'], { env });
    expect(dry).toMatchObject({ code: 0, stdout: 'Dry run: nothing is due.\n', stderr: '' });
    // init on an up-to-date database is quiet too.
    expect(await ws.run(['init'])).toMatchObject({ code: 0, stdout: '', stderr: '' });
  });

  it('a successful send prints nothing, and takes the HTML create compiled: no mjml, nodemailer loaded', async () => {
    const { id } = await create('now');
    const { result, loaded, required } = await tracedSendDue('send', [], { NEWSLETTER_TRANSPORT: sink.url });
    expect(result, describeRun(['send-due'], result)).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(loaded.some((url) => url.endsWith('/dist/cli/main.js'))).toBe(true);
    // create kept the HTML it compiled (src/render/compiled-template.ts): the send needs no MJML.
    expect(requiredFrom(required, 'mjml-core')).toEqual([]);
    expect(fromPackage(loaded, 'nodemailer').length).toBeGreaterThan(0);
    expect(sink.total).toBe(3);
    const shown = await ws.json<{ status: string; counts: { sent: number } }>(['show', String(id), '--json']);
    expect(shown).toMatchObject({ status: 'sent', counts: { sent: 3 } });
  });

  it('without a kept compile the send loads mjml (the tracer sees it), and never its HTTP client', async () => {
    const { id } = await create('now');
    const db = new Database(ws.db);
    try {
      db.prepare('UPDATE newsletters SET template_compiled = NULL WHERE id = ?').run(id);
    } finally {
      db.close();
    }
    const before = sink.total;
    const { result, required } = await tracedSendDue('compile', [], { NEWSLETTER_TRANSPORT: sink.url });
    expect(result, describeRun(['send-due'], result)).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(requiredFrom(required, 'mjml').length).toBeGreaterThan(0);
    expect(requiredFrom(required, 'mjml-core').length).toBeGreaterThan(0);
    // Without the HTTP client cheerio would load for nothing (src/render/mjml-loader.ts).
    expect(requiredFrom(required, 'undici')).toEqual([]);
    expect(sink.total - before).toBe(3);
  });

  it('--verbose says what happened: the summary on stdout, the steps on stderr', async () => {
    const { id } = await create('now');
    const result = await ws.run(['send-due', '--verbose'], { env: { NEWSLETTER_TRANSPORT: sink.url } });
    expect(result.code, describeRun(['send-due', '--verbose'], result)).toBe(0);
    expect(result.stdout).toMatch(/^run \d+: 3 sent, 0 failed, 0 to retry, 0 unknown, 0 skipped$/m);
    expect(result.stdout).toContain(`newsletter ${id} (Hello {{name}}): sent`);
    expect(result.stderr).toMatch(/run \d+ started \(host test-host-a, pid \d+\)/);
    expect(result.stderr).toContain(`newsletter ${id} is sent: every recipient has an outcome`);
    expect(sink.total).toBe(9);

    // And once everything is sent, --verbose says so instead of staying silent.
    const idle = await ws.run(['send-due', '--verbose'], { env: { NEWSLETTER_TRANSPORT: sink.url } });
    expect(idle).toMatchObject({ code: 0, stdout: 'Nothing is due.\n', stderr: '' });
  });
});
