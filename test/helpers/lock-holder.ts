/**
 * A child process that holds a run lock, the way another `send-due` on the same host would. It
 * runs plain JavaScript with proper-lockfile on the lock path we compute, and prints `locked` once
 * it holds the lock, so tests wait for that line instead of sleeping.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';

const properLockfile = createRequire(import.meta.url).resolve('proper-lockfile');

const script = `
const [lib, database, lockfilePath, stale, update] = process.argv.slice(1);
require(lib)
  .lock(database, {
    lockfilePath,
    realpath: false,
    retries: 0,
    stale: Number(stale),
    update: Number(update),
    onCompromised: () => {},
  })
  .then(() => {
    console.log('locked');
    setInterval(() => {}, 1 << 30);
  })
  .catch((error) => {
    console.log('failed ' + error.code);
    process.exit(1);
  });
`;

export interface LockHolder {
  child: ChildProcess;
  /** SIGKILL: the lock folder stays behind, as after a crash. Resolves once the child is gone. */
  kill(): Promise<void>;
}

export async function startLockHolder(options: {
  databasePath: string;
  lockPath: string;
  staleMs: number;
  updateMs: number;
}): Promise<LockHolder> {
  const child = spawn(
    process.execPath,
    [
      '-e',
      script,
      properLockfile,
      options.databasePath,
      options.lockPath,
      String(options.staleMs),
      String(options.updateMs),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const lines = createInterface({ input: child.stdout! });
  const first = await new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    child.once('error', reject);
    child.once('exit', (code, signal) => reject(new Error(`lock holder exited (${code ?? signal})`)));
  });
  if (first !== 'locked') {
    await exited;
    throw new Error(`lock holder did not get the lock: ${first}`);
  }
  return {
    child,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
