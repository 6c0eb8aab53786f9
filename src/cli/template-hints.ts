/**
 * What to say when `create --template` names a relative path that is not there. The tour's
 * `--template templates/monthly-digest.mjml` works in a checkout of the project, where templates/
 * sits beside the code; after `npm install -g` the starters live under the npm prefix, and the
 * operator needs to hear where, and how to get an editable copy (`templates init`). Paths stay
 * relative to the current folder: a template is the operator's file, not the package's.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { PACKAGED_TEMPLATES } from './package-paths.js';

/** Lines indented as details of the "no such file" problem; none for an absolute path. */
export function missingTemplateHints(template: string): string[] {
  if (path.isAbsolute(template)) return [];
  const starters = readdirSync(PACKAGED_TEMPLATES).filter((name) => name.endsWith('.mjml'));
  const name = path.basename(template);
  // `templates/welcome.mjml` → `templates init templates`: the same --template then works as typed.
  const folder =
    starters.includes(name) && path.dirname(template) !== '.' ? path.dirname(template) : 'templates';
  return [
    `  The starter templates (${starters.join(', ')}) ship with newsletter in ${PACKAGED_TEMPLATES}.`,
    `  To copy them here and edit them: newsletter templates init ${folder}`,
  ];
}
