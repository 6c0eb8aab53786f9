/**
 * Helpers shared by the benchmark scripts: the machine, child processes with their resource
 * usage, workspaces made through the built CLI, medians. Plain ESM JavaScript so that the bench
 * runs what cron runs (dist/ and bin/), nothing compiled on the side.
 */
import { fork, spawn } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { cp, copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CLI = path.join(ROOT, 'bin', 'newsletter.js');
export const RUSAGE = path.join(ROOT, 'bench', 'rusage.js');
export const LARGE_TEMPLATE = path.join(ROOT, 'bench', 'templates', 'digest-40k.mjml');

/**
 * The Node flags of bin/newsletter.js's shebang: cron starts the CLI through it, so the bench
 * passes them too (`node FLAGS bin/newsletter.js …`), and measures what cron runs.
 */
export const CLI_NODE_FLAGS = (() => {
  const shebang = readFileSync(CLI, 'utf8').split('\n')[0] ?? '';
  const words = shebang.replace(/^#!\S*env\s+(-S\s+)?/, '').split(/\s+/);
  const flags = [];
  for (const word of words.slice(1)) {
    if (word === '--') break;
    flags.push(word);
  }
  return flags;
})();

/** Every child this script started; killed on the way out, whatever happened. */
const children = new Set();
export function killChildren() {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  children.clear();
}
export function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export function machine() {
  const cpuinfo = safeRead('/proc/cpuinfo');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown';
  return {
    cpu: model,
    cores: os.availableParallelism?.() ?? os.cpus().length,
    ramGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
    date: new Date().toISOString(),
  };
}

function safeRead(file) {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

let rusageCount = 0;

/**
 * Forks a sink (bench/sink.js, with its optional delay) and drives it over IPC:
 * { port, url, reset(capture?), stats(), stop() }.
 */
export async function forkSink(script, args = []) {
  const child = track(fork(script, args, { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] }));
  const port = await new Promise((resolve, reject) => {
    child.once('message', (m) => (m.ready ? resolve(m.port) : reject(new Error('sink: no port'))));
    child.once('exit', (code) => reject(new Error(`sink exited ${code}`)));
  });
  const ask = (message) =>
    new Promise((resolve) => {
      child.once('message', resolve);
      child.send(message);
    });
  return {
    port,
    url: `smtp://127.0.0.1:${port}`,
    reset: (capture = null) => ask({ cmd: 'reset', capture }),
    stats: () => ask({ cmd: 'stats' }),
    stop: () => {
      if (child.connected) child.send({ cmd: 'exit' });
    },
  };
}

/**
 * Runs `node [nodeArgs] script args` to its end (`script` null: `node [nodeArgs] args`). With
 * `rusage`, the script runs inside bench/rusage.js, which reports the process's own CPU time and
 * peak RSS at exit.
 */
export async function runNode(script, args, options = {}) {
  const { cwd = ROOT, env = {}, rusage = false, nodeArgs = [], timeoutMs = 600_000 } = options;
  // Named by a counter too: children started in the same millisecond (the multi-host runs) would
  // otherwise share the file.
  const rusageFile = rusage
    ? path.join(os.tmpdir(), `bench-rusage-${process.pid}-${Date.now()}-${++rusageCount}.json`)
    : null;
  const target = script === null ? [] : rusage ? [RUSAGE, rusageFile, script] : [script];
  const argv = [...nodeArgs, ...target, ...args];
  const started = process.hrtime.bigint();
  const child = track(spawn(process.execPath, argv, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] }));
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c) => {
    stdout += c;
  });
  child.stderr.setEncoding('utf8').on('data', (c) => {
    stderr += c;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const { code, signal } = await new Promise((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal })),
  );
  clearTimeout(timer);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  let usage = null;
  if (rusageFile) {
    try {
      usage = JSON.parse(await readFile(rusageFile, 'utf8'));
    } catch {
      usage = null;
    }
    await rm(rusageFile, { force: true });
  }
  return { code, signal, stdout, stderr, ms, usage };
}

/** Runs the built CLI; throws with its output unless it exits with one of `codes`. */
export async function cli(ws, args, options = {}) {
  const { env = {}, codes = [0], ...rest } = options;
  const nodeArgs = [...CLI_NODE_FLAGS, ...(rest.nodeArgs ?? [])];
  const result = await runNode(CLI, args, { cwd: ws.dir, env: { ...ws.env, ...env }, ...rest, nodeArgs });
  if (!codes.includes(result.code)) {
    throw new Error(
      `newsletter ${args.join(' ')} exited ${result.code ?? result.signal}:\n${result.stdout}${result.stderr}`,
    );
  }
  return result;
}

export function baseEnv(dir, extra = {}) {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: dir,
    NEWSLETTER_DATABASE: path.join(dir, 'newsletter.db'),
    NEWSLETTER_HOST_ID: 'bench-host',
    NEWSLETTER_FROM: 'Example Weekly <news@example.org>',
    NEWSLETTER_BASE_URL: 'https://example.org/newsletter',
    NEWSLETTER_SECRET: 'bench-secret-0123456789abcdef',
    ...extra,
  };
}

/** A fresh folder with the templates (and the ~40 KB benchmark template) and an initialised database. */
export async function workspace(prefix, env = {}) {
  const dir = await mkdtemp(path.join(os.tmpdir(), `newsletter-bench-${prefix}-`));
  await cp(path.join(ROOT, 'templates'), path.join(dir, 'templates'), { recursive: true });
  await copyFile(LARGE_TEMPLATE, path.join(dir, 'templates', 'digest-40k.mjml'));
  const ws = { dir, env: baseEnv(dir, env), remove: () => rm(dir, { recursive: true, force: true }) };
  await cli(ws, ['init']);
  return ws;
}

/** Writes `count` subscribers (email,name,city) to a CSV, streaming. */
export async function writeCsv(file, count) {
  const out = createWriteStream(file);
  const write = (text) =>
    out.write(text) ? Promise.resolve() : new Promise((resolve) => out.once('drain', resolve));
  await write('email,name,city\n');
  const cities = ['Leith', 'Zürich', 'Lyon', 'Porto', 'Oslo'];
  let chunk = '';
  for (let i = 1; i <= count; i++) {
    chunk += `reader${String(i).padStart(7, '0')}@example.net,Reader ${i},${cities[i % cities.length]}\n`;
    if (i % 10_000 === 0) {
      await write(chunk);
      chunk = '';
    }
  }
  await write(chunk);
  await new Promise((resolve, reject) => out.end((error) => (error ? reject(error) : resolve())));
}

/** Imports `count` subscribers and creates the benchmark newsletter, due now. Returns its id. */
export async function audience(ws, count, options = {}) {
  const csv = path.join(ws.dir, 'subscribers.csv');
  await writeCsv(csv, count);
  const imported = await cli(ws, ['recipients', 'import', csv, '--list', 'readers'], {
    rusage: options.rusage,
  });
  const created = await cli(ws, [
    'create',
    '--subject',
    'Hello {{name}}: the digest for {{city}}',
    '--template',
    options.template ?? 'templates/digest-40k.mjml',
    '--list',
    'readers',
    '--at',
    'now',
    '--json',
  ]);
  return { id: JSON.parse(created.stdout).id, imported };
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** CPU time of a child (user + system), in microseconds, from process.resourceUsage(). */
export function cpuMicros(usage) {
  return usage ? usage.userCPUTime + usage.systemCPUTime : null;
}

export const round = (value, digits = 0) =>
  value === null || value === undefined || Number.isNaN(value) ? null : Number(value.toFixed(digits));
