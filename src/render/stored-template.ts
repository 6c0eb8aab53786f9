/**
 * Reading a template into a StoredTemplate (src/domain/stored-template.ts) when `create` or
 * `edit` runs, and compiling a stored one later without reading the original files again.
 *
 * Why a private folder rather than inlining the includes into one document: MJML gives
 * `<mj-include>` its own meaning (a partial's head goes to the head, css and html includes become
 * mj-style and mj-raw, error lines name the partial), and it reads includes from the file system
 * itself. Writing the stored files back out, byte for byte, under a fresh owner-only folder and
 * compiling there gives exactly the HTML the original files gave, with the same checks
 * (src/render/includes.ts) and the same digest. The folder lives in the OS temporary directory,
 * which the shipped systemd unit makes private (PrivateTmp), and is removed after the compile.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BuildError, ConfigError } from '../domain/errors.js';
import { type StoredTemplate, type StoredTemplateFile, storedTemplate } from '../domain/stored-template.js';
import type { Millis } from '../domain/types.js';
import { keptHtml } from './compiled-template.js';
import { readTemplateTree } from './includes.js';
import { type CompiledTemplate, compileMjml } from './mjml.js';

/**
 * The template and every file it includes, as they are now, checked as a build checks them
 * (includes confined to the template's folder). Problems are returned, not thrown: `create`
 * reports them with its others.
 */
export async function snapshotTemplate(
  templatePath: string,
  templatesRoot: string,
  now: Millis,
): Promise<{ template: StoredTemplate | null; problems: string[] }> {
  const root = path.resolve(templatesRoot);
  const tree = await readTemplateTree(path.resolve(root, templatePath), root);
  if (tree.problems.length > 0 || tree.files.length === 0) return { template: null, problems: tree.problems };
  // In the order MJML meets them, a partial included twice listed twice: the digest is then the
  // one compileMjml gives the body (templateHash), so `show` names a sent version the same way.
  const files: StoredTemplateFile[] = tree.files.map((file) => ({
    path: path.relative(root, file.path).split(path.sep).join('/'),
    content: file.content,
  }));
  return { template: storedTemplate(files, now), problems: [] };
}

/**
 * Compiles the stored files, never the originals (see the header), or takes the HTML kept when
 * `create` or `edit` compiled them (src/render/compiled-template.ts). Throws BuildError as
 * compileMjml does.
 */
export async function compileStoredTemplate(template: StoredTemplate): Promise<CompiledTemplate> {
  const kept = keptHtml(template);
  if (kept !== null) return { html: kept, templateHash: template.sha256 };
  const main = template.files[0];
  if (!main)
    throw new BuildError('the stored template is empty', ['edit it: newsletter edit ID --template FILE']);
  const folder = await privateFolder();
  try {
    for (const file of template.files) {
      const target = path.resolve(folder, file.path);
      // Paths were made relative to the template's folder by snapshotTemplate; refuse anything else.
      if (!target.startsWith(`${folder}${path.sep}`))
        throw new BuildError('the stored template names a file outside its folder', [file.path]);
      await mkdir(path.dirname(target), { recursive: true, mode: 0o700 });
      await writeFile(target, file.content, { mode: 0o600 });
    }
    return await compileMjml(main.path, folder);
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}

/**
 * Not a BuildError: nothing is wrong with the newsletter, so it must not be marked failed; the run
 * stops with a configuration error and the next one, once TMPDIR is fixed, sends it.
 */
async function privateFolder(): Promise<string> {
  try {
    return await mkdtemp(path.join(tmpdir(), 'newsletter-template-'));
  } catch (error) {
    throw new ConfigError(
      `Cannot write the stored template to a private folder in ${tmpdir()}: ${error instanceof Error ? error.message : String(error)}`,
      [
        'Set TMPDIR to a folder this user can write (the shipped systemd unit gives each run a private /tmp).',
      ],
    );
  }
}
