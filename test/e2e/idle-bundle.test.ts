/**
 * The idle cron run's quick path as it ships: one CommonJS file, dist/cli/idle-bundle.cjs, built
 * by scripts/build-idle-bundle.js from dist/ and required by bin/newsletter.js before anything
 * else. It must be the build of the current dist/ (not a stale copy that accepts what the program
 * now refuses), load nothing heavy, use its bundled copy of better-sqlite3's JavaScript only with
 * the addon of the same version, and never answer "idle" where the program alone would say
 * anything: for every configuration below, bin/newsletter.js and dist/cli/main.js (the program
 * without the quick path) exit and print exactly the same.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  assertBuilt,
  BIN,
  type CliResult,
  closedPort,
  type EnvPatch,
  makeWorkspace,
  REPO_ROOT,
  type Workspace,
} from '../helpers/cli.js';

const BUNDLE = path.join(REPO_ROOT, 'dist', 'cli', 'idle-bundle.cjs');
const MAIN = path.join(REPO_ROOT, 'dist', 'cli', 'main.js');

let ws: Workspace;
let transport: string;

beforeAll(async () => {
  assertBuilt();
  ws = await makeWorkspace('newsletter-idle-bundle-');
  transport = `smtp://127.0.0.1:${await closedPort()}`;
  await ws.ok(['init']);
});

afterAll(async () => {
  await ws?.cleanup();
});

/** `node SCRIPT args` in the workspace, with its configuration patched as runCli does it. */
function run(script: string, args: readonly string[], patch: EnvPatch = {}): CliResult {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: ws.dir };
  for (const [key, value] of Object.entries({ ...ws.env, NEWSLETTER_TRANSPORT: transport, ...patch })) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  // `--`: Node 20 would take an --env-file after the script as its own (nodejs/node#54232).
  const child = spawnSync(process.execPath, ['--', script, ...args], {
    cwd: ws.dir,
    env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 20_000,
  });
  return { code: child.status, signal: child.signal, stdout: child.stdout, stderr: child.stderr };
}

/** Requires a bundle in a child (stdout a pipe, as under cron): its answer and what it loaded. */
function askBundle(bundle: string, patch: EnvPatch = {}): { idle: boolean; loaded: string[] } {
  const probe = ws.path('ask-bundle.cjs');
  writeFileSync(
    probe,
    `const idle = require(${JSON.stringify(bundle)}).quietIdleSendDue(['send-due']);
process.stdout.write(JSON.stringify({ idle, loaded: Object.keys(require.cache) }));\n`,
  );
  const result = run(probe, [], patch);
  expect(result.stderr).toBe('');
  return JSON.parse(result.stdout);
}

const sqliteLib = (loaded: string[]) => loaded.filter((file) => /better-sqlite3[\\/]lib[\\/]/.test(file));

describe('the idle bundle', () => {
  it('is what scripts/build-idle-bundle.js builds from dist/ now (npm run build writes it)', () => {
    const built = spawnSync(
      process.execPath,
      [path.join(REPO_ROOT, 'scripts', 'build-idle-bundle.js'), '--print'],
      {
        cwd: REPO_ROOT,
        encoding: 'utf8',
        maxBuffer: 16 * 1024 * 1024,
      },
    );
    expect(built.stderr).toBe('');
    expect(built.status).toBe(0);
    expect(
      readFileSync(BUNDLE, 'utf8') === built.stdout,
      'dist/cli/idle-bundle.cjs is stale: run `npm run build`',
    ).toBe(true);
  });

  it('requires only builtins and the packages the configuration and SQLite need, and imports nothing', () => {
    const code = readFileSync(BUNDLE, 'utf8');
    const required = new Set(
      [...code.matchAll(/\brequire(?:\$\d+)?\(\s*"([^"]+)"\s*\)/g)].map((m) => m[1] as string),
    );
    const packages = [...required].filter((id) => !builtinModules.includes(id.replace(/^node:/, '')));
    // dotenv: a .env file; bindings: better-sqlite3 without an addon path; better-sqlite3: the
    // installed package, when it is not the bundled version.
    expect(packages.sort()).toEqual(['better-sqlite3', 'bindings', 'dotenv']);
    // A dynamic import would start the ES module loader the bundle is there to avoid.
    expect(code).not.toMatch(/\bimport\(/);
    // better-sqlite3's JavaScript is in it, with the version it came from.
    const version = JSON.parse(
      readFileSync(path.join(REPO_ROOT, 'node_modules/better-sqlite3/package.json'), 'utf8'),
    ).version as string;
    expect(code).toContain(`Includes the JavaScript of better-sqlite3 ${version}`);
    expect(code).toContain(`installedVersion(addon) === ${JSON.stringify(version)}`);
  });

  it('answers idle with its own copy of better-sqlite3 when the installed one is that version', () => {
    const { idle, loaded } = askBundle(BUNDLE);
    expect(idle).toBe(true);
    expect(sqliteLib(loaded)).toEqual([]);
    // Refused configurations are not idle, with either copy.
    expect(askBundle(BUNDLE, { NEWSLETTER_SECRET: undefined }).idle).toBe(false);
  });

  it('uses the installed better-sqlite3 instead when its version differs from the bundled one', () => {
    // An install whose better-sqlite3 is another version: the bundle and the migrations as they
    // ship, and a copy of the package (its addon included) with another version number.
    const root = ws.path('other-install');
    mkdirSync(path.join(root, 'dist', 'cli'), { recursive: true });
    cpSync(BUNDLE, path.join(root, 'dist', 'cli', 'idle-bundle.cjs'));
    symlinkSync(path.join(REPO_ROOT, 'migrations'), path.join(root, 'migrations'));
    const sqlite = path.join(root, 'node_modules', 'better-sqlite3');
    const installed = path.join(REPO_ROOT, 'node_modules', 'better-sqlite3');
    cpSync(path.join(installed, 'lib'), path.join(sqlite, 'lib'), { recursive: true });
    cpSync(
      path.join(installed, 'build', 'Release', 'better_sqlite3.node'),
      path.join(sqlite, 'build', 'Release', 'better_sqlite3.node'),
    );
    const manifest = JSON.parse(readFileSync(path.join(installed, 'package.json'), 'utf8'));
    writeFileSync(path.join(sqlite, 'package.json'), JSON.stringify({ ...manifest, version: '0.0.0-other' }));

    const { idle, loaded } = askBundle(path.join(root, 'dist', 'cli', 'idle-bundle.cjs'));
    expect(idle).toBe(true);
    expect(sqliteLib(loaded)).toContain(path.join(sqlite, 'lib', 'database.js'));
  });
});

describe('bin/newsletter.js says exactly what the program alone says', () => {
  const cases: { name: string; args?: string[]; env?: EnvPatch }[] = [
    { name: 'NEWSLETTER_FROM not an address', env: { NEWSLETTER_FROM: 'not an address' } },
    { name: 'no NEWSLETTER_SECRET', env: { NEWSLETTER_SECRET: undefined } },
    { name: 'no NEWSLETTER_BASE_URL', env: { NEWSLETTER_BASE_URL: undefined } },
    { name: 'no NEWSLETTER_TRANSPORT', env: { NEWSLETTER_TRANSPORT: undefined } },
    { name: 'NEWSLETTER_RATE not a number', env: { NEWSLETTER_RATE: 'fast' } },
    { name: 'NEWSLETTER_SMTP_TLS unknown', env: { NEWSLETTER_SMTP_TLS: 'sometimes' } },
    { name: 'DKIM domain without a key', env: { NEWSLETTER_DKIM_DOMAIN: 'example.org' } },
    { name: 'a misspelt variable', env: { NEWSLETTER_FORM: 'news@example.org' } },
    { name: 'bound to another host', env: { NEWSLETTER_HOST_ID: 'test-host-b' } },
    { name: 'no database there', env: { NEWSLETTER_DATABASE: 'missing.db' } },
    { name: 'an --env-file that is not there', args: ['--env-file', 'missing.env', 'send-due'] },
  ];

  it.each(cases)('$name', ({ args = ['send-due'], env = {} }) => {
    const alone = run(MAIN, args, env);
    // The program has something to say here, so a quick "idle" answer would show.
    expect([alone.code, alone.stdout, alone.stderr]).not.toEqual([0, '', '']);
    expect(run(BIN, args, env)).toEqual(alone);
  });

  it('and when all is well, both say nothing', () => {
    expect(run(MAIN, ['send-due'])).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(run(BIN, ['send-due'])).toMatchObject({ code: 0, stdout: '', stderr: '' });
  });
});
