/**
 * Where `migrate-db` copies to, without the password ever being on the command line: every local
 * user can read another's argv (`ps`, /proc/PID/cmdline), and shells keep it in their history.
 * The URL comes from NEWSLETTER_MIGRATE_TO, or from a file named by --to-file (first non-empty
 * line); --to is accepted only for a URL without a password (libpq's PGPASSWORD or ~/.pgpass then
 * supply it).
 */
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { isPostgresUrl } from '../domain/database-location.js';
import { ConfigError, UsageError } from '../domain/errors.js';
import { othersCanRead } from '../host/private-files.js';

export const MIGRATE_TO_VARIABLE = 'NEWSLETTER_MIGRATE_TO';

export interface MigrateTargetSources {
  to?: string | undefined;
  toFile?: string | undefined;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

export interface MigrateTarget {
  url: string;
  /** Where it came from, for messages: `--to`, `--to-file PATH` or the variable's name. */
  source: string;
  /** Things worth saying that do not stop the copy (a target file others can read). */
  warnings: string[];
}

const HOW = `Put the URL in ${MIGRATE_TO_VARIABLE} (e.g. \`read -rs ${MIGRATE_TO_VARIABLE}; export ${MIGRATE_TO_VARIABLE}\`) or in a file only you can read, given with --to-file PATH.`;

export function migrateTargetOf(sources: MigrateTargetSources): MigrateTarget {
  const fromEnv = sources.env[MIGRATE_TO_VARIABLE]?.trim() || undefined;
  const given = [sources.to, sources.toFile, fromEnv].filter((value) => value !== undefined);
  if (given.length === 0) {
    throw new UsageError('migrate-db needs the PostgreSQL database to copy into.', [HOW]);
  }
  if (given.length > 1) {
    throw new UsageError(
      `Give the target once: --to, --to-file or ${MIGRATE_TO_VARIABLE}, not several of them.`,
    );
  }
  const warnings: string[] = [];
  let url: string;
  let source: string;
  if (sources.to !== undefined) {
    url = sources.to.trim();
    source = '--to';
  } else if (sources.toFile !== undefined) {
    const file = path.resolve(sources.cwd, sources.toFile);
    url = readTargetFile(file);
    source = `--to-file ${file}`;
    if (othersCanRead(statSync(file).mode)) {
      warnings.push(`${file} can be read by other users, and it holds the database password: chmod 600 it.`);
    }
  } else {
    url = fromEnv as string;
    source = MIGRATE_TO_VARIABLE;
  }
  if (!isPostgresUrl(url)) {
    // Never echo the value: it may hold a password.
    throw new UsageError(
      `${source} must be a postgres:// URL, e.g. postgres://newsletter@db.internal/newsletter.`,
    );
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(
      `${source} is not a valid postgres:// URL (a % in the password must be written %25).`,
    );
  }
  if (source === '--to' && parsed.password) {
    throw new UsageError(
      '--to carries a password, and every local user can see a command line (`ps`); nothing was copied.',
      [HOW, 'Then change that password: it may already be in your shell history.'],
    );
  }
  return { url, source, warnings };
}

function readTargetFile(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new UsageError(
      `Cannot read --to-file ${file} (${(error as NodeJS.ErrnoException).code ?? String(error)}).`,
    );
  }
  const line = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .find((l) => l !== '' && !l.startsWith('#'));
  if (!line) throw new UsageError(`--to-file ${file} is empty: it should hold one postgres:// URL.`);
  return line;
}
