/**
 * A newsletter's stored template (issue 14): the template and every file it includes, as
 * `create` or `edit` read them, kept in the database with the newsletter. A send, a dry run and a
 * preview all compile these same bytes (src/render/stored-template.ts), never the files on disk
 * again: what was previewed and tested is what goes out, and a template under /home or /tmp
 * still builds under the shipped systemd unit (ProtectHome, PrivateTmp).
 *
 * Its identity is a sha256 over every file's path and bytes, the same digest the verified body
 * keeps as `templateHash` (src/render/mjml.ts), so `show`, `preview` and a sent newsletter's body
 * name one version the same way.
 */
import { createHash } from 'node:crypto';
import type { Millis } from './types.js';

export interface StoredTemplateFile {
  /** Relative to the template's folder (forward slashes): the template first, then its includes. */
  path: string;
  content: string;
}

export interface StoredTemplate {
  files: StoredTemplateFile[];
  /** When `create` or `edit` read the files. */
  storedAt: Millis;
  /** sha256 (hex) of the files: templateDigest. */
  sha256: string;
  /**
   * The HTML `create` or `edit` compiled these files to when it checked them, with the key it was
   * compiled under (src/render/compiled-template.ts); null when none was kept.
   */
  compiled: CompiledCopy | null;
}

/** A stored template's compiled HTML, valid only under the same key. */
export interface CompiledCopy {
  /** sha256 (hex) over the template's digest, MJML's version and the compile options. */
  key: string;
  html: string;
}

/** Length-prefixed, so that moving text from one file to the next changes the digest. */
export function templateDigest(files: readonly StoredTemplateFile[]): string {
  const hash = createHash('sha256');
  for (const file of files) {
    const bytes = Buffer.from(file.content, 'utf8');
    hash.update(`${file.path}\0${bytes.length}\0`).update(bytes);
  }
  return hash.digest('hex');
}

/** What people read: 12 hex digits, as git's short ids, enough to tell versions apart. */
export function shortDigest(sha256: string): string {
  return sha256.slice(0, 12);
}

export function storedTemplate(
  files: StoredTemplateFile[],
  storedAt: Millis,
  compiled: CompiledCopy | null = null,
): StoredTemplate {
  return { files, storedAt, sha256: templateDigest(files), compiled };
}

/**
 * The columns' text (a JSON array of files; the compiled copy's JSON) back to a StoredTemplate;
 * null when none was stored.
 */
export function readStoredTemplate(
  source: string | null,
  storedAt: Millis | null,
  compiled: string | null = null,
): StoredTemplate | null {
  if (source === null || storedAt === null) return null;
  return storedTemplate(
    JSON.parse(source) as StoredTemplateFile[],
    storedAt,
    compiled === null ? null : (JSON.parse(compiled) as CompiledCopy),
  );
}

export function storedTemplateColumn(template: StoredTemplate): string {
  return JSON.stringify(template.files);
}

export function compiledCopyColumn(template: StoredTemplate): string | null {
  return template.compiled === null ? null : JSON.stringify(template.compiled);
}
