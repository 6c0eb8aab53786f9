/**
 * Compiles one MJML template to HTML, strictly, with includes confined to the templates folder.
 *
 * mjml takes a few hundred milliseconds just to load, so it is imported on the first compile, not
 * when this file is: `send-due` runs every minute and must stay fast when nothing is due.
 */
import path from 'node:path';
import type { MjmlValidationIssue } from 'mjml';
import { BuildError } from '../domain/errors.js';
import { templateDigest } from '../domain/stored-template.js';
import { displayPath, readTemplateTree, type TemplateFile } from './includes.js';
import { importMjml } from './mjml-loader.js';

export interface CompiledTemplate {
  html: string;
  /** sha256 (hex) of the template and every included file, with their paths (templateDigest). */
  templateHash: string;
}

/**
 * The options every compile passes besides the paths. They are part of a kept compile's key
 * (src/render/compiled-template.ts): a change here compiles every stored template again.
 */
export const MJML_OPTIONS = {
  validationLevel: 'strict',
  // mjml 5 drops every mj-include unless told otherwise.
  ignoreIncludes: false,
  // Authors' comments are notes to themselves, not content for subscribers.
  keepComments: false,
} as const;

// Without the HTTP client mjml's HTML parser would load for nothing (mjml-loader.ts).
let mjmlModule: Promise<typeof import('mjml')['default']> | undefined;

function loadMjml(): Promise<typeof import('mjml')['default']> {
  mjmlModule ??= importMjml();
  return mjmlModule;
}

/**
 * @throws BuildError naming the template, with every problem in `details`: each refused or missing
 * include, or each MJML validation error with its file and line.
 */
export async function compileMjml(templatePath: string, templatesRoot: string): Promise<CompiledTemplate> {
  const root = path.resolve(templatesRoot);
  const main = path.resolve(root, templatePath);
  const name = displayPath(root, main);

  const tree = await readTemplateTree(main, root);
  const source = tree.files[0];
  if (tree.problems.length > 0 || source === undefined || tree.realRoot === null) {
    throw new BuildError(`template ${name} cannot be built`, tree.problems);
  }

  const mjml2html = await loadMjml();
  let html: string;
  try {
    const result = await mjml2html(source.content, {
      ...MJML_OPTIONS,
      // Includes resolve relative to the including file; actualPath names it in error messages.
      filePath: main,
      actualPath: main,
      // Lets a partial include a sibling folder's file (`../shared/x.mjml`) without leaving the
      // root; readTemplateTree has already refused anything that would.
      includePath: tree.realRoot,
    });
    // Strict mode throws on validation errors; this guards against a future change of heart.
    if (result.errors.length > 0) {
      throw new BuildError(
        `template ${name} does not compile`,
        result.errors.map(describe(root, tree.realRoot)),
      );
    }
    html = result.html;
  } catch (error) {
    if (error instanceof BuildError) throw error;
    throw new BuildError(`template ${name} does not compile`, mjmlProblems(error, root, tree.realRoot));
  }
  if (html.trim() === '')
    throw new BuildError(`template ${name} compiled to empty HTML`, ['MJML produced no HTML']);
  return { html, templateHash: hashOf(tree.files) };
}

/**
 * mjml 5 in strict mode rejects with a ValidationError (an Error) whose `errors` lists every issue
 * with its line; structural failures ("Malformed MJML", "Parsing failed") are plain Errors.
 */
function mjmlProblems(error: unknown, root: string, realRoot: string): string[] {
  if (typeof error === 'object' && error !== null && 'errors' in error && Array.isArray(error.errors)) {
    const issues = (error.errors as unknown[]).filter(isIssue);
    if (issues.length > 0) return issues.map(describe(root, realRoot));
  }
  const message = error instanceof Error ? error.message : String(error);
  return [stripRoots(message, root, realRoot)];
}

function isIssue(value: unknown): value is MjmlValidationIssue {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { message?: unknown }).message === 'string'
  );
}

function describe(root: string, realRoot: string): (issue: MjmlValidationIssue) => string {
  return (issue) => {
    if (issue.formattedMessage) return stripRoots(issue.formattedMessage.trim(), root, realRoot);
    const line = issue.line === undefined ? '' : `line ${issue.line} `;
    const tag = issue.tagName === undefined ? '' : `(${issue.tagName}) `;
    return `${line}${tag}${issue.message.trim()}`;
  };
}

/** Paths in messages are shown relative to the templates folder: shorter, and host-independent. */
function stripRoots(message: string, root: string, realRoot: string): string {
  return message.split(`${root}${path.sep}`).join('').split(`${realRoot}${path.sep}`).join('');
}

/** The same digest as a stored template's (src/domain/stored-template.ts): one version, one name. */
function hashOf(files: readonly TemplateFile[]): string {
  return templateDigest(files.map((file) => ({ path: file.display, content: file.content })));
}
