/**
 * mjml loaded without cheerio's undici (src/render/mjml-loader.ts), checked in fresh processes
 * (the module cache is per process): the same HTML as a plain `require('mjml')`, byte for byte;
 * no undici file loaded; the stand-ins gone from the cache afterwards; and cheerio's `fromURL`,
 * the one user of undici the stand-in replaced, still works (against a server on 127.0.0.1).
 * Runs the built dist/ (`npm run build` first), as the CLI does.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, REPO_ROOT } from '../helpers/cli.js';

const LOADER = path.join(REPO_ROOT, 'dist', 'render', 'mjml-loader.js');
const MJML = path.join(REPO_ROOT, 'dist', 'render', 'mjml.js');

let templates: string;

beforeAll(() => {
  assertBuilt();
  // The shipped partials and the ~40 KB benchmark template: a realistic body with includes.
  templates = path.join(mkdtempSync(path.join(tmpdir(), 'newsletter-mjml-loader-')), 'templates');
  cpSync(path.join(REPO_ROOT, 'templates'), templates, { recursive: true });
  cpSync(
    path.join(REPO_ROOT, 'bench', 'templates', 'digest-40k.mjml'),
    path.join(templates, 'digest-40k.mjml'),
  );
});

afterAll(() => {
  if (templates) rmSync(path.dirname(templates), { recursive: true, force: true });
});

/** Runs an ES module script in a new Node process; its last stdout line is JSON. */
function runScript(source: string): Record<string, unknown> {
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', source], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
  return JSON.parse(result.stdout.trim().split('\n').at(-1) ?? 'null') as Record<string, unknown>;
}

const PRELUDE = `
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
const require = createRequire(${JSON.stringify(LOADER)});
const undiciFiles = () => Object.keys(require.cache).filter((file) => /[\\\\/]undici[\\\\/]/.test(file)).length;
const sha = (text) => createHash('sha256').update(text).digest('hex');
`;

describe('mjml without undici', () => {
  it('compiles the same HTML as plain mjml, without loading undici', () => {
    const file = path.join(templates, 'digest-40k.mjml');
    const options = {
      validationLevel: 'strict',
      filePath: file,
      actualPath: file,
      ignoreIncludes: false,
      includePath: templates,
      keepComments: false,
    };
    // What src/render/mjml.ts gives mjml, with mjml required the ordinary way.
    const plain = runScript(`${PRELUDE}
      const { html } = await require('mjml')(readFileSync(${JSON.stringify(file)}, 'utf8'), ${JSON.stringify(options)});
      console.log(JSON.stringify({ sha: sha(html), length: html.length, undici: undiciFiles() }));`);
    const deferred = runScript(`${PRELUDE}
      const { compileMjml } = await import(${JSON.stringify(MJML)});
      const { html } = await compileMjml('digest-40k.mjml', ${JSON.stringify(templates)});
      console.log(JSON.stringify({ sha: sha(html), length: html.length, undici: undiciFiles() }));`);

    expect(plain.length).toBeGreaterThan(30_000);
    expect(deferred).toEqual({ sha: plain.sha, length: plain.length, undici: 0 });
    // The saving is real: the ordinary load brings undici's files in.
    expect(plain.undici).toBeGreaterThan(50);
  });

  it("leaves no stand-in in the cache, and cheerio's fromURL still fetches", () => {
    const out = runScript(`${PRELUDE}
      import http from 'node:http';
      const { importMjml } = await import(${JSON.stringify(LOADER)});
      const mjml2html = await importMjml();
      const core = createRequire(require.resolve('mjml')).resolve('mjml-core');
      const cheerioFile = createRequire(core).resolve('cheerio');
      const undiciFile = createRequire(cheerioFile).resolve('undici');
      const cachedAfterLoad = require.cache[undiciFile] !== undefined;
      const server = http.createServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        res.end('<p id="x">fetched</p>');
      });
      await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
      const cheerio = createRequire(core)('cheerio');
      const $ = await cheerio.fromURL('http://127.0.0.1:' + server.address().port + '/');
      server.close();
      const real = require.cache[undiciFile];
      console.log(JSON.stringify({
        mjml: typeof mjml2html,
        cachedAfterLoad,
        text: $('#x').text(),
        realLoaded: real !== undefined && real.loaded === true && typeof real.exports.Client === 'function',
      }));`);
    expect(out).toEqual({ mjml: 'function', cachedAfterLoad: false, text: 'fetched', realLoaded: true });
  });
});
