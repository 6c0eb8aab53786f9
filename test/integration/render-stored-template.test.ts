/**
 * A stored template compiles to exactly what its files compiled to, without them
 * (src/render/stored-template.ts): same HTML, same digest as the body's templateHash; a partial
 * included twice is stored as MJML met it; a stored path that would leave its folder is refused.
 */
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { BuildError } from '../../src/domain/errors.js';
import { storedTemplate } from '../../src/domain/stored-template.js';
import { compileMjml } from '../../src/render/mjml.js';
import { compileStoredTemplate, snapshotTemplate } from '../../src/render/stored-template.js';
import { TEMPLATES } from '../helpers/cli.js';

const folders: string[] = [];
afterEach(() => {
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

function templatesCopy(): string {
  const folder = mkdtempSync(path.join(tmpdir(), 'newsletter-stored-'));
  folders.push(folder);
  cpSync(TEMPLATES, folder, { recursive: true });
  return folder;
}

it('compiles the stored copy to the same HTML and digest as the files, once the files are gone', async () => {
  const root = templatesCopy();
  const fromDisk = await compileMjml('welcome.mjml', root);
  const { template, problems } = await snapshotTemplate(path.join(root, 'welcome.mjml'), root, 1);
  expect(problems).toEqual([]);
  expect(template?.files[0]?.path).toBe('welcome.mjml');
  expect(template?.sha256).toBe(fromDisk.templateHash);
  rmSync(root, { recursive: true, force: true });
  const fromStore = await compileStoredTemplate(template!);
  expect(fromStore).toEqual(fromDisk);
});

it('keeps a partial included twice in the order MJML meets it, so the digests agree', async () => {
  const root = templatesCopy();
  writeFileSync(
    path.join(root, 'twice.mjml'),
    '<mjml><mj-body><mj-include path="partials/footer.mjml" /><mj-include path="partials/footer.mjml" /></mj-body></mjml>',
  );
  const fromDisk = await compileMjml('twice.mjml', root);
  const { template } = await snapshotTemplate(path.join(root, 'twice.mjml'), root, 1);
  expect(template?.files.map((f) => f.path)).toEqual([
    'twice.mjml',
    'partials/footer.mjml',
    'partials/footer.mjml',
  ]);
  expect(template?.sha256).toBe(fromDisk.templateHash);
  expect((await compileStoredTemplate(template!)).html).toBe(fromDisk.html);
});

it('reports an include that leaves the folder instead of storing it; refuses a stored path that escapes', async () => {
  const root = templatesCopy();
  writeFileSync(
    path.join(root, 'escape.mjml'),
    '<mjml><mj-body><mj-include path="../outside.mjml" /></mj-body></mjml>',
  );
  const snapshot = await snapshotTemplate(path.join(root, 'escape.mjml'), root, 1);
  expect(snapshot.template).toBeNull();
  expect(snapshot.problems.join('\n')).toMatch(/leaves the templates folder/);

  const forged = storedTemplate(
    [
      { path: 'main.mjml', content: '<mjml><mj-body></mj-body></mjml>' },
      { path: '../../evil.mjml', content: 'x' },
    ],
    1,
  );
  await expect(compileStoredTemplate(forged)).rejects.toBeInstanceOf(BuildError);
});
