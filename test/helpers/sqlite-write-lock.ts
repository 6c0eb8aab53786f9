/**
 * Another program holding a SQLite database's write lock, the way a long writer (a backup tool,
 * an old-style import) would: a child process that runs BEGIN IMMEDIATE, prints `locked`, and
 * holds the lock until the test tells it to let go. It writes nothing (it rolls back), so the
 * database is exactly as it was. The test decides when the lock is released, by an event it has
 * seen, never by a timer.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { createInterface, type Interface } from 'node:readline';

const betterSqlite3 = createRequire(import.meta.url).resolve('better-sqlite3');

const script = `
const [lib, file] = process.argv.slice(1);
const db = new (require(lib))(file, { fileMustExist: true, timeout: 10000 });
db.exec('BEGIN IMMEDIATE');
console.log('locked');
process.stdin.setEncoding('utf8').once('data', () => {
  db.exec('ROLLBACK');
  db.close();
  console.log('released');
  process.exit(0);
});
`;

export interface SqliteWriteLock {
  /** Lets go of the lock; resolves once the child has rolled back and exited. */
  release(): Promise<void>;
  /** SIGKILL, for cleanup: SQLite frees the lock of a process that is gone. */
  kill(): Promise<void>;
}

/** Resolves once the child holds the write lock of `databasePath`. */
export async function holdSqliteWriteLock(databasePath: string): Promise<SqliteWriteLock> {
  const child: ChildProcess = spawn(process.execPath, ['-e', script, betterSqlite3, databasePath], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const lines: Interface = createInterface({ input: child.stdout! });
  const nextLine = () =>
    new Promise<string>((resolve, reject) => {
      lines.once('line', resolve);
      child.once('exit', (code, signal) => reject(new Error(`the lock holder exited (${code ?? signal})`)));
    });
  const first = await nextLine();
  if (first !== 'locked') throw new Error(`the lock holder said "${first}"`);
  return {
    async release() {
      const said = nextLine();
      child.stdin!.end('release\n');
      const line = await said;
      if (line !== 'released') throw new Error(`the lock holder said "${line}"`);
      await exited;
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
