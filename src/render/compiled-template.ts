/**
 * The HTML a stored template compiled to, kept with it (issue 17, session 8). `create` and `edit`
 * compile the stored template to check it; the HTML they got is stored beside the files, under a
 * key. A later build (a send, a dry run, a preview) whose key is the same uses that HTML instead of
 * loading MJML and compiling again: loading MJML alone costs a few hundred milliseconds of CPU, in
 * every run that begins a newsletter and on every host that sees it due.
 *
 * The key is everything a compile of the stored files reads besides the files' paths on disk: the
 * files themselves (their digest, recomputed from the stored bytes on every read), MJML's version
 * (its parts are pinned to it) and the options (MJML_OPTIONS). Anything else compiles again. The
 * checks of promise 3 (src/render/build.ts) run on the HTML either way.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { StoredTemplate } from '../domain/stored-template.js';
import type { VerifiedBody } from '../domain/types.js';
import { MJML_OPTIONS } from './mjml.js';

const require = createRequire(import.meta.url);
let mjmlVersion: string | undefined;

/** Read from its package.json, not by loading MJML, which is what a kept compile saves. */
function installedMjmlVersion(): string {
  mjmlVersion ??= (require('mjml/package.json') as { version: string }).version;
  return mjmlVersion;
}

export function compileKey(templateSha256: string): string {
  const inputs = { template: templateSha256, mjml: installedMjmlVersion(), options: MJML_OPTIONS };
  return createHash('sha256').update(JSON.stringify(inputs)).digest('hex');
}

/** The kept HTML when it was compiled under the key these files, this MJML and these options give. */
export function keptHtml(template: StoredTemplate): string | null {
  const copy = template.compiled;
  return copy !== null && copy.key === compileKey(template.sha256) ? copy.html : null;
}

/**
 * The template with the HTML its check compiled, to be stored with it; unchanged when there is
 * no body or the body was built from other files.
 */
export function withCompiledHtml(template: StoredTemplate, body: VerifiedBody | null): StoredTemplate {
  if (body === null || body.templateHash !== template.sha256) return template;
  return { ...template, compiled: { key: compileKey(template.sha256), html: body.html } };
}
