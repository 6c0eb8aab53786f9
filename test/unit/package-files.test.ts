/**
 * What `npm install newsletter` gets: the published files must hold everything the CLI reads from
 * beside its own code at run time. The migrations were once left out (package.json "files"), so
 * an installed `newsletter init` would have found no schema to apply.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/postgres.js';

describe('the published package', () => {
  it('holds the CLI, its built code, every migration and the starter templates', () => {
    // --ignore-scripts: no `prepare` (a build) from inside the tests; `npm test` built dist/ first.
    const packed = JSON.parse(
      execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
        cwd: REPO_ROOT,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }),
    ) as { files: { path: string }[] }[];
    const files = new Set(packed[0]?.files.map((file) => file.path));
    const expected = [
      'bin/newsletter.js',
      'dist/cli/main.js',
      ...['sqlite', 'postgres'].flatMap((kind) =>
        readdirSync(`${REPO_ROOT}migrations/${kind}`).map((file) => `migrations/${kind}/${file}`),
      ),
      ...readdirSync(`${REPO_ROOT}templates`, { recursive: true, withFileTypes: true })
        .filter((entry) => entry.isFile())
        .map((entry) => `${entry.parentPath.slice(REPO_ROOT.length)}/${entry.name}`),
    ];
    expect(expected.filter((file) => !files.has(file))).toEqual([]);
  });
});
