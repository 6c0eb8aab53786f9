/**
 * What `npm install newsletter` gets: the published files must hold everything the CLI reads from
 * beside its own code at run time, and everything the README links to. The migrations were once
 * left out (package.json "files"), so an installed `newsletter init` would have found no schema to
 * apply; later crontab.example, systemd/ and docs/ were missing from the package the README
 * points people at.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/postgres.js';

interface PackResult {
  files: { path: string }[];
}

// --ignore-scripts: no `prepack` (a build) from inside the tests; `npm test` built dist/ and the
// man page first.
const packed = JSON.parse(
  execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  }),
) as PackResult[];
const files = new Set(packed[0]?.files.map((file) => file.path));
const packageJson = JSON.parse(readFileSync(`${REPO_ROOT}package.json`, 'utf8')) as { man: string[] };

/** Every file under a folder of the repository, as `folder/…` paths. */
function filesUnder(folder: string): string[] {
  return readdirSync(`${REPO_ROOT}${folder}`, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => `${entry.parentPath.slice(REPO_ROOT.length)}/${entry.name}`);
}

const missing = (expected: string[]) => expected.filter((file) => !files.has(file));

describe('the published package', () => {
  it('holds the CLI, its built code, every migration and the starter templates', () => {
    expect(
      missing([
        'bin/newsletter.js',
        'dist/cli/main.js',
        ...filesUnder('migrations/sqlite'),
        ...filesUnder('migrations/postgres'),
        ...filesUnder('templates'),
      ]),
    ).toEqual([]);
  });

  it('holds what the README links to: crontab.example, the systemd units, docs/', () => {
    expect(
      missing(['README.md', 'crontab.example', ...filesUnder('systemd'), ...filesUnder('docs')]),
    ).toEqual([]);
  });

  it('holds the man page that package.json\'s "man" field installs', () => {
    expect(packageJson.man.map((page) => page.replace(/^\.\//, ''))).toEqual(['man/newsletter.1']);
    expect(missing(['man/newsletter.1'])).toEqual([]);
  });

  it('leaves out the sources, the tests and the benchmarks', () => {
    const unwanted = [...files].filter((file) => /^(src|test|bench|scripts)\//.test(file));
    expect(unwanted).toEqual([]);
  });
});
