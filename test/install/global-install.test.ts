/**
 * The package as an operator gets it (issue 15, "Packaging"): `npm pack`, then `npm install -g` of
 * the tarball into a temporary prefix, then the README's tour from a folder that is not the
 * project. It proves what no test inside the checkout can: the published files are enough, the
 * starter templates are found (or explained) from anywhere, `man newsletter` is installed, and npm
 * has nothing to warn about but the one engine warning the README explains.
 *
 * Slow (better-sqlite3 compiles from source: about two minutes on two cores), so it is not part
 * of `npm test`: `npm run test:install` runs it, and .ci/run does after the suite.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, REPO_ROOT } from '../helpers/cli.js';

const root = mkdtempSync(path.join(tmpdir(), 'newsletter-install-'));
const prefix = path.join(root, 'prefix');
const elsewhere = path.join(root, 'elsewhere');
const installed = path.join(prefix, 'lib', 'node_modules', 'newsletter');
/**
 * The environment of the shell that started the tests (its proxy and CA settings reach the
 * registry), without what `npm run` adds (npm_config_prefix and the like would redirect the
 * install) and without NEWSLETTER_* settings of the developer's.
 */
const cleanEnv = Object.fromEntries(
  Object.entries(process.env).filter(([name]) => !/^(npm_|NEWSLETTER_)/i.test(name)),
);
let installLog = '';

beforeAll(() => {
  assertBuilt();
  mkdirSync(elsewhere);
  mkdirSync(prefix);
  // --ignore-scripts: the tarball of what `npm run test:install` built (prepack would build again).
  const packed = JSON.parse(
    execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', root], {
      cwd: REPO_ROOT,
      env: cleanEnv,
      encoding: 'utf8',
    }),
  ) as { filename: string }[];
  const tarball = path.join(root, packed[0]?.filename ?? 'newsletter-0.1.0.tgz');
  // As the README says to install it: better-sqlite3's install script (its native binding) is the
  // one to allow; npm 11 reads no package's allowScripts field for a global install.
  const install = spawnSync(
    'npm',
    [
      'install',
      '-g',
      '--prefix',
      prefix,
      '--allow-scripts=better-sqlite3',
      '--no-fund',
      '--no-audit',
      tarball,
    ],
    // spawnSync blocks vitest's own timeout: a registry that never answers must not hang the run.
    { cwd: elsewhere, env: cleanEnv, encoding: 'utf8', timeout: 540_000 },
  );
  installLog = `${install.stdout}\n${install.stderr}`;
  if (install.status !== 0) throw new Error(`npm install -g failed:\n${installLog}`);
}, 600_000);

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

/** The installed `newsletter`, as PATH would find it, in the folder `elsewhere`. */
function newsletter(args: string[], cwd = elsewhere) {
  const result = spawnSync(path.join(prefix, 'bin', 'newsletter'), args, {
    cwd,
    env: { ...cleanEnv, NEWSLETTER_DATABASE: './news.db', NEWSLETTER_HOST_ID: 'install-test-host' },
    encoding: 'utf8',
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('npm install -g of the packed tarball', () => {
  it('warns about no install script, and about engines only for js-beautify’s nopt and abbrev', () => {
    expect(installLog).not.toContain('install-scripts');
    const engineWarnings = [...installLog.matchAll(/EBADENGINE +package: '([^@']+)@/g)].map((m) => m[1]);
    // Explained in the README ("Installing"): only js-beautify's own command line loads them.
    expect(engineWarnings.filter((name) => name !== 'nopt' && name !== 'abbrev')).toEqual([]);
  });

  it('installs the man page under the prefix', () => {
    const page = path.join(prefix, 'share', 'man', 'man1', 'newsletter.1');
    expect(existsSync(page)).toBe(true);
    expect(readFileSync(page, 'utf8')).toMatch(/^\.TH NEWSLETTER 1 /);
  });

  it('ships crontab.example, the systemd units and docs/ beside the code', () => {
    for (const file of ['crontab.example', 'systemd/newsletter-send-due.timer', 'docs/operations.md']) {
      expect(existsSync(path.join(installed, file)), file).toBe(true);
    }
  });

  it("runs the tour's first commands from another folder, templates from templates init", () => {
    expect(newsletter(['init']).code).toBe(0);
    writeFileSync(path.join(elsewhere, 'subscribers.csv'), 'email,name,city\nada@example.org,Ada,London\n');
    expect(newsletter(['recipients', 'import', 'subscribers.csv', '--list', 'customers']).code).toBe(0);

    const create = [
      'create',
      '--subject',
      'December news for {{name}}',
      '--template',
      'templates/monthly-digest.mjml',
      '--list',
      'customers',
      '--from',
      'Example News <news@example.org>',
      '--at',
      '2099-12-01 09:00',
    ];
    const before = newsletter(create);
    expect(before.code).toBe(4);
    expect(before.stderr).toContain(`ship with newsletter in ${path.join(installed, 'templates')}.`);
    expect(before.stderr).toContain('newsletter templates init templates');

    expect(newsletter(['templates', 'init', 'templates']).code).toBe(0);
    const after = newsletter(create);
    expect(after, after.stderr).toMatchObject({ code: 0, stdout: '1\n' });
  });

  it('runs the demo and names the command that runs it again', () => {
    const demo = newsletter(['demo']);
    expect(demo.code, demo.stderr).toBe(0);
    expect(demo.stdout).toContain('Run `newsletter demo` again');
    expect(demo.stdout).not.toContain('npm run demo');
  });
});
