/**
 * A stored template's compiled HTML, kept by `create` and `edit` (src/render/compiled-template.ts):
 * a build takes it only under the key these files, this MJML and these options give; under any
 * other key, or without one, the stored files are compiled again.
 */
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { type StoredTemplate, storedTemplate } from '../../src/domain/stored-template.js';
import type { VerifiedBody } from '../../src/domain/types.js';
import { buildBody } from '../../src/render/build.js';
import { compileKey, keptHtml, withCompiledHtml } from '../../src/render/compiled-template.js';
import { MJML_OPTIONS } from '../../src/render/mjml.js';
import { compileStoredTemplate, snapshotTemplate } from '../../src/render/stored-template.js';
import { TEMPLATES } from '../helpers/cli.js';
import { newsletterFixture } from '../helpers/store-fixtures.js';

const root = mkdtempSync(path.join(tmpdir(), 'newsletter-kept-'));
cpSync(TEMPLATES, root, { recursive: true });
afterAll(() => rmSync(root, { recursive: true, force: true }));

const MARKER = '<p>kept, not compiled</p>';

async function welcome(): Promise<StoredTemplate> {
  const { template } = await snapshotTemplate(path.join(root, 'welcome.mjml'), root, 1);
  if (template === null) throw new Error('welcome.mjml did not snapshot');
  return template;
}

function bodyOf(html: string, templateHash: string): VerifiedBody {
  return { subject: 'S', html, text: 't', from: 'a@example.org', fields: [], templateHash, compiledAt: 1 };
}

/** The key as it would be under another MJML version or other options. */
function keyWith(template: StoredTemplate, mjml: string, options: object): string {
  const inputs = { template: template.sha256, mjml, options };
  return createHash('sha256').update(JSON.stringify(inputs)).digest('hex');
}

it('keeps the HTML a check compiled, under the key, and a build takes it without compiling', async () => {
  const template = await welcome();
  const compiled = await compileStoredTemplate(template);
  const kept = withCompiledHtml(template, bodyOf(compiled.html, compiled.templateHash));
  expect(kept.compiled).toEqual({ key: compileKey(template.sha256), html: compiled.html });
  expect(keptHtml(kept)).toBe(compiled.html);
  // The marker proves the kept HTML is what a build returns: MJML could never produce it.
  const marked = { ...kept, compiled: { key: kept.compiled!.key, html: MARKER } };
  expect(await compileStoredTemplate(marked)).toEqual({ html: MARKER, templateHash: template.sha256 });
});

it('compiles again under another MJML version, other options or other files', async () => {
  const template = await welcome();
  const fresh = (await compileStoredTemplate(template)).html;
  const version = (createRequire(import.meta.url)('mjml/package.json') as { version: string }).version;
  // The key is built from exactly these inputs: with the installed version it matches.
  expect(keyWith(template, version, MJML_OPTIONS)).toBe(compileKey(template.sha256));
  const stale = [
    keyWith(template, '0.0.1', MJML_OPTIONS),
    keyWith(template, version, { ...MJML_OPTIONS, keepComments: true }),
    compileKey('0'.repeat(64)),
  ];
  for (const key of stale) {
    const copy = { ...template, compiled: { key, html: MARKER } };
    expect(keptHtml(copy)).toBeNull();
    expect((await compileStoredTemplate(copy)).html).toBe(fresh);
  }
  // Files changed after the copy was kept (the digest is recomputed from the stored bytes).
  const changed = storedTemplate(
    template.files.map((file, i) => (i === 0 ? { ...file, content: `${file.content}\n` } : file)),
    1,
    { key: compileKey(template.sha256), html: MARKER },
  );
  expect(keptHtml(changed)).toBeNull();
});

it('keeps nothing for a body built from other files, or for no body', async () => {
  const template = await welcome();
  expect(withCompiledHtml(template, bodyOf(MARKER, '1'.repeat(64)))).toBe(template);
  expect(withCompiledHtml(template, null)).toBe(template);
  // The welcome template really has an include: the key covers more than one file.
  expect(template.files.length).toBeGreaterThan(1);
  expect(readFileSync(path.join(root, 'welcome.mjml'), 'utf8')).toBe(template.files[0]!.content);
});

it('a build from kept HTML is checked as a compile is (promise 3): no unsubscribe link, no body', async () => {
  const template = await welcome();
  const context = {
    templatesRoot: root,
    knownFields: ['email', 'name'],
    defaultFrom: 'News <news@example.org>',
  };
  const key = compileKey(template.sha256);
  const withHtml = (html: string) =>
    newsletterFixture({ template: { ...template, compiled: { key, html } } });
  // Kept HTML with a link and text: it is the body, exactly.
  const good = '<p>Hi {{name}}</p><a href="{{unsubscribe_url}}">Unsubscribe</a>';
  expect((await buildBody(withHtml(good), context)).html).toBe(good);
  // Without the link, or empty: refused, as the same HTML from MJML would be.
  await expect(buildBody(withHtml('<p>Hi {{name}}</p>'), context)).rejects.toMatchObject({
    name: 'BuildError',
    details: expect.arrayContaining([expect.stringContaining('no unsubscribe link')]),
  });
  await expect(buildBody(withHtml('   '), context)).rejects.toMatchObject({
    details: expect.arrayContaining(['the HTML part is empty']),
  });
});
