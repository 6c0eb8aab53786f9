/**
 * Reads a template and every file it includes, refusing any include that could leave the
 * templates folder, before MJML sees any of it.
 *
 * Why not trust MJML 5's own include guard: it refuses traversal, absolute paths and missing
 * files by replacing the include with `<!-- mj-include denied -->`, and strict validation does not
 * report that. A footer that silently vanishes is an email without its unsubscribe link and postal
 * address. So every include is checked here, each problem is named, and the build fails.
 */
import { readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';

export interface TemplateFile {
  /** Absolute path as written (before symlinks are resolved). */
  path: string;
  /** Relative to the templates folder where possible: what an operator sees. */
  display: string;
  content: string;
}

export interface TemplateTree {
  /** The templates folder with symlinks resolved (what MJML's includePath gets), or null if missing. */
  realRoot: string | null;
  /** The template first, then its includes depth-first in document order; empty if unreadable. */
  files: TemplateFile[];
  problems: string[];
}

// Generous: a newsletter has a handful of partials. The cap stops a diamond of includes from
// multiplying into millions of reads.
const MAX_INCLUDES = 200;

const INCLUDE_TAG = /<mj-include\b([^>]*)>/gi;
const ATTRIBUTE = /([A-Za-z-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>/]+))/g;

export async function readTemplateTree(templatePath: string, templatesRoot: string): Promise<TemplateTree> {
  const root = path.resolve(templatesRoot);
  const problems: string[] = [];
  const files: TemplateFile[] = [];
  const display = (file: string): string => displayPath(root, file);

  let realRoot: string;
  try {
    realRoot = await realpath(root);
  } catch {
    return { realRoot: null, files, problems: [`templates folder not found: ${root}`] };
  }

  // A relative template path is taken as relative to the templates folder.
  const main = path.resolve(root, templatePath);
  let content: string;
  try {
    content = await readFile(main, 'utf8');
  } catch (error) {
    return { realRoot, files, problems: [`cannot read template ${main}: ${reason(error)}`] };
  }
  files.push({ path: main, display: display(main), content });

  const visit = async (file: string, source: string, chain: readonly string[]): Promise<void> => {
    for (const include of findIncludes(source)) {
      const where = `${display(file)} line ${include.line}`;
      const checked = await checkInclude(include.path, file, root, realRoot);
      if ('problem' in checked) {
        problems.push(`${where}: ${checked.problem}`);
        continue;
      }
      if (chain.includes(checked.real)) {
        problems.push(`${where}: mj-include "${include.path}" is circular`);
        continue;
      }
      if (files.length > MAX_INCLUDES) {
        problems.push(`${where}: more than ${MAX_INCLUDES} includes; refusing to read further`);
        return;
      }
      let included: string;
      try {
        included = await readFile(checked.real, 'utf8');
      } catch (error) {
        problems.push(`${where}: cannot read mj-include "${include.path}": ${reason(error)}`);
        continue;
      }
      files.push({ path: checked.target, display: display(checked.target), content: included });
      // css and html includes are pasted verbatim by MJML: they cannot include anything further.
      if (include.type !== 'css' && include.type !== 'html') {
        await visit(checked.target, included, [...chain, checked.real]);
      }
    }
  };
  await visit(main, content, [await realpath(main)]);
  return { realRoot, files, problems };
}

interface FoundInclude {
  path: string | undefined;
  type: string | undefined;
  line: number;
}

/**
 * Every `<mj-include>` in the source, even inside comments or mj-raw where MJML would not act on
 * it: being stricter than MJML costs nothing, and a commented-out include becomes live on one edit.
 */
function findIncludes(source: string): FoundInclude[] {
  const found: FoundInclude[] = [];
  for (const tag of source.matchAll(INCLUDE_TAG)) {
    const attributes = new Map<string, string>();
    for (const attribute of (tag[1] ?? '').matchAll(ATTRIBUTE)) {
      attributes.set((attribute[1] ?? '').toLowerCase(), attribute[2] ?? attribute[3] ?? attribute[4] ?? '');
    }
    const line = source.slice(0, tag.index).split('\n').length;
    found.push({ path: attributes.get('path'), type: attributes.get('type'), line });
  }
  return found;
}

type CheckedInclude = { target: string; real: string } | { problem: string };

async function checkInclude(
  raw: string | undefined,
  includingFile: string,
  root: string,
  realRoot: string,
): Promise<CheckedInclude> {
  if (raw === undefined || raw.trim() === '') return { problem: 'mj-include without a path' };
  // MJML percent-decodes include paths (repeatedly), so `%2e%2e/` is `../` to it. An encoded
  // path means something other than what it shows: refuse it rather than reason about it.
  const decoded = fullyDecode(raw);
  if (decoded !== raw) {
    return {
      problem: `mj-include "${raw}" is percent-encoded (MJML reads it as "${decoded}"); write it plainly`,
    };
  }
  if (raw.includes('\0') || raw.includes('\\')) {
    return { problem: `mj-include "${raw}" contains a backslash or NUL` };
  }
  if (path.isAbsolute(raw) || /^[A-Za-z]:/.test(raw)) {
    // MJML 5 drops absolute includes silently, even inside the folder: refuse both, with a reason.
    return isInside(root, raw)
      ? { problem: `mj-include "${raw}" is absolute; write it relative to the including file` }
      : { problem: `mj-include "${raw}" is outside the templates folder ${root}` };
  }
  const target = path.resolve(path.dirname(includingFile), raw);
  if (!isInside(root, target)) {
    return { problem: `mj-include "${raw}" leaves the templates folder ${root}` };
  }
  let real: string;
  try {
    real = await realpath(target);
  } catch {
    return { problem: `mj-include "${raw}": file not found (${target})` };
  }
  if (!isInside(realRoot, real)) {
    return { problem: `mj-include "${raw}" is a symlink that leaves the templates folder (to ${real})` };
  }
  if (!(await stat(real)).isFile()) return { problem: `mj-include "${raw}" is not a file` };
  return { target, real };
}

/** Relative to the templates folder when inside it, else absolute: what an operator should see. */
export function displayPath(root: string, file: string): string {
  return isInside(root, file) ? path.relative(root, file) : file;
}

/** True when `file` is strictly below `folder` (both absolute). */
function isInside(folder: string, file: string): boolean {
  const relative = path.relative(folder, file);
  return (
    relative !== '' &&
    relative !== '..' &&
    !relative.startsWith(`..${path.sep}`) &&
    !path.isAbsolute(relative)
  );
}

/** As MJML's parser does it: decode until stable, at most 10 times, stopping at malformed input. */
function fullyDecode(input: string): string {
  let result = input;
  for (let i = 0; i < 10; i++) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(result);
    } catch {
      break;
    }
    if (decoded === result) break;
    result = decoded;
  }
  return result;
}

function reason(error: unknown): string {
  if (error instanceof Error && 'code' in error && error.code === 'ENOENT') return 'file not found';
  return error instanceof Error ? error.message : String(error);
}
