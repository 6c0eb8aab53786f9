/**
 * Files and folders the tool creates hold subscriber data (the database, outbox copies, previews)
 * or decide who may send (the run lock), so they are owner-only whatever the umask (DESIGN,
 * "Configuration"). A mode given to open() or mkdir() is only masked further by the umask, never
 * widened, so creating with 0600/0700 is enough for new files; an existing file keeps its mode
 * when rewritten, hence the explicit chmod where we rewrite.
 */
import { chmodSync, closeSync, existsSync, openSync, statSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';

export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIR_MODE = 0o700;

/** Group or others may read (or, for a folder, list) it. */
export function othersCanRead(mode: number): boolean {
  return (mode & 0o044) !== 0;
}

/** Group or others may create, rename or remove entries in it (a folder), or rewrite it. */
export function othersCanWrite(mode: number): boolean {
  return (mode & 0o022) !== 0;
}

/** Writes (or rewrites) a file that only its owner can read. */
export async function writePrivateFile(file: string, data: string | Uint8Array): Promise<void> {
  await writeFile(file, data, { mode: PRIVATE_FILE_MODE });
  await chmod(file, PRIVATE_FILE_MODE);
}

/** Creates a folder (and missing parents) at 0700; an existing folder is left as it is. */
export async function makePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
}

/**
 * Creates an empty file at 0600 unless it exists. SQLite treats an empty file as a new database
 * and gives its -wal and -shm files the database file's mode, so this one step makes all three
 * private.
 */
export function createEmptyPrivateFileSync(file: string): void {
  try {
    closeSync(openSync(file, 'wx', PRIVATE_FILE_MODE));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
}

/** Narrows existing files to the owner; missing ones are skipped. Best effort: used on our own files. */
export function restrictToOwnerSync(files: readonly string[]): void {
  for (const file of files) {
    try {
      if (existsSync(file) && (statSync(file).mode & 0o077) !== 0) chmodSync(file, PRIVATE_FILE_MODE);
    } catch {
      // Not ours to change (another owner): doctor reports the mode instead.
    }
  }
}
