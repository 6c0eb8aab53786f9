/**
 * Where the installed package keeps what it ships beside its code. After `npm install -g` that is
 * somewhere under the npm prefix (e.g. /usr/local/lib/node_modules/newsletter), never the
 * operator's current folder, so the commands that point people at the starter templates ask here.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package's root folder (it holds package.json, bin/, dist/, templates/). */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The starter MJML templates and their partials, as shipped. */
export const PACKAGED_TEMPLATES = path.join(PACKAGE_ROOT, 'templates');
