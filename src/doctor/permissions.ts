/**
 * `doctor`'s look at who else can read the subscriber data, and who else could hold the run lock
 * (DESIGN, "Configuration": files the tool creates are owner-only). Files made by older versions,
 * copied in by hand or restored from a backup keep whatever mode they had: this is where that
 * shows up.
 */
import { statSync } from 'node:fs';
import path from 'node:path';
import { privateFolderProblem } from '../host/lock-location.js';
import { othersCanRead, othersCanWrite } from '../host/private-files.js';
import { type CheckResult, ok, problem, warning } from './types.js';

const octal = (mode: number): string => (mode & 0o777).toString(8).padStart(4, '0');

/** The SQLite file, its -wal and -shm, and its folder: readable (or writable) only by the owner? */
export function databasePermissionsCheck(file: string): CheckResult {
  const name = 'permissions';
  const exposed: string[] = [];
  for (const candidate of [file, `${file}-wal`, `${file}-shm`]) {
    const mode = modeOf(candidate);
    if (mode !== null && othersCanRead(mode)) exposed.push(`${candidate} (${octal(mode)})`);
  }
  const dir = path.dirname(file);
  const dirMode = modeOf(dir);
  const fixFiles = `chmod 600 ${[file, `${file}-wal`, `${file}-shm`].join(' ')} 2>/dev/null; chmod 700 ${dir} if nothing else lives there; run the service with UMask=0077`;
  if (exposed.length > 0) {
    return warning(name, `Others can read the subscriber data: ${exposed.join(', ')}.`, `${fixFiles}.`);
  }
  if (dirMode !== null && othersCanWrite(dirMode)) {
    return warning(
      name,
      `Others can write the database's folder ${dir} (${octal(dirMode)}): they could replace or remove the database; the run lock is kept in the private per-user folder instead.`,
      `Move the database to a folder only this user can write (mode 0700), or \`chmod go-w ${dir}\`.`,
    );
  }
  return ok(name, `The database ${file} is readable by its owner only.`);
}

/** The per-user lock folder: a folder others can write would let them hold the lock. */
export function lockFolderProblem(dir: string): CheckResult | null {
  const found = privateFolderProblem(dir);
  if (found === null) return null;
  return problem(
    'lock',
    `The run lock folder ${dir} ${found}: another user could hold the lock and stop every run; send-due refuses it (exit 3).`,
    `Remove it or fix it (\`chown $(id -un) ${dir} && chmod 700 ${dir}\`), or set NEWSLETTER_LOCK_DIR to a folder only this user can write.`,
  );
}

function modeOf(file: string): number | null {
  try {
    return statSync(file).mode;
  } catch {
    return null;
  }
}
