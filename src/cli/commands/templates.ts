/**
 * `newsletter templates init DIR`: copies the starter templates, their partials and their README
 * out of the installed package into DIR, to edit there and pass to `create --template`. After
 * `npm install -g` the package lives under the npm prefix, where an operator should not edit
 * (the next upgrade would replace the edits) and would not think to look.
 *
 * An existing file is never overwritten without `--force`: a template someone has edited is
 * worth more than the starter it came from. The check covers every file before the first is
 * copied, so a refusal leaves DIR as it was.
 */
import { lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { InputError } from '../../domain/errors.js';
import { PACKAGED_TEMPLATES } from '../package-paths.js';
import { println } from '../output.js';

export interface TemplatesInitOptions {
  force?: boolean;
}

export async function templatesInitCommand(dir: string, options: TemplatesInitOptions): Promise<void> {
  const target = path.resolve(dir);
  const files = starterFiles();
  const folders = [...new Set(files.map((file) => path.dirname(path.join(target, file))))];
  const notAFolder = folders.find((folder) => occupied(folder) && !isFolder(folder));
  if (notAFolder) {
    throw new InputError(`${notAFolder} is not a folder: nothing was copied.`, [
      'Choose another folder for the templates.',
    ]);
  }
  const inTheWay = files.map((file) => path.join(target, file)).filter(occupied);
  const folderInTheWay = inTheWay.find(isFolder);
  if (folderInTheWay) {
    throw new InputError(`${folderInTheWay} is a folder where a starter template goes: nothing was copied.`, [
      'Choose another folder for the templates.',
    ]);
  }
  if (inTheWay.length > 0 && !options.force) {
    const others = inTheWay.slice(1).map((file) => path.relative(target, file));
    throw new InputError(`${inTheWay[0]} already exists: nothing was copied.`, [
      ...(others.length > 0 ? [`Also there: ${others.join(', ')}.`] : []),
      'Add --force to replace the starter files (other files in the folder are left alone), or choose another folder.',
    ]);
  }
  for (const file of files) copyStarter(file, target);

  println(`Copied ${files.length} files into ${target}:`);
  for (const file of files) println(`  ${file}`);
  const example = path.relative(process.cwd(), path.join(target, 'welcome.mjml')) || 'welcome.mjml';
  println(`Next: newsletter create --subject "Hello {{name}}" --template ${example} --list LIST`);
}

/** Every file under the packaged templates folder, relative to it, sorted (README.md, partials/…). */
function starterFiles(): string[] {
  return readdirSync(PACKAGED_TEMPLATES, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(PACKAGED_TEMPLATES, path.join(entry.parentPath, entry.name)))
    .sort();
}

/** lstat, not exists: a dangling symlink is in the way too, and must not be written through. */
function occupied(file: string): boolean {
  try {
    lstatSync(file);
    return true;
  } catch {
    return false;
  }
}

/** A folder, or a symlink to one. */
function isFolder(file: string): boolean {
  try {
    return statSync(file).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Templates hold no subscriber data, so unlike the database and the outbox they follow the
 * umask, as any file the operator writes would. A replaced file is removed first, so that a
 * symlink in its place is replaced rather than followed; 'wx' then refuses anything that
 * appeared in between.
 */
function copyStarter(file: string, target: string): void {
  const destination = path.join(target, file);
  mkdirSync(path.dirname(destination), { recursive: true });
  rmSync(destination, { force: true });
  writeFileSync(destination, readFileSync(path.join(PACKAGED_TEMPLATES, file)), { flag: 'wx' });
}
