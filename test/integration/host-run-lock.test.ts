import { mkdir, mkdtemp, rm, rmdir, stat, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/domain/errors.js';
import {
  acquireRunLock,
  DEFAULT_STALE_MS,
  DEFAULT_UPDATE_MS,
  inspectRunLock,
  type RunLock,
  runLockPath,
} from '../../src/host/run-lock.js';
import { type LockHolder, startLockHolder } from '../helpers/lock-holder.js';

let dir: string;
let databasePath: string;
const held: RunLock[] = [];
const holders: LockHolder[] = [];

const failOnCompromise = (error: Error): void => {
  throw new Error(`unexpected compromise: ${error.message}`);
};

async function acquire(extra: { staleMs?: number; updateMs?: number; lockDir?: string } = {}) {
  const lock = await acquireRunLock({ databasePath, onCompromised: failOnCompromise, ...extra });
  if (lock) held.push(lock);
  return lock;
}

/** Sets the lock folder's mtime into the past, as if its holder stopped refreshing it. */
async function ageLock(lockPath: string, byMs: number): Promise<void> {
  const past = new Date(Date.now() - byMs);
  await utimes(lockPath, past, past);
}

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'newsletter-lock-'));
  databasePath = path.join(dir, 'newsletter.db');
});

afterEach(async () => {
  for (const lock of held.splice(0)) await lock.release();
  for (const holder of holders.splice(0)) await holder.kill();
  await rm(dir, { recursive: true, force: true });
});

describe('acquireRunLock', () => {
  it('puts the lock beside the database, or in lockDir', async () => {
    expect(runLockPath({ databasePath })).toBe(path.join(dir, 'newsletter.db.lock'));
    expect(runLockPath({ databasePath, lockDir: null })).toBe(path.join(dir, 'newsletter.db.lock'));
    expect(runLockPath({ databasePath, lockDir: '/run/newsletter' })).toBe(
      '/run/newsletter/newsletter.db.lock',
    );

    const lockDir = path.join(dir, 'locks');
    await mkdir(lockDir);
    const lock = await acquire({ lockDir });
    expect(lock?.path).toBe(path.join(lockDir, 'newsletter.db.lock'));
    expect((await stat(path.join(lockDir, 'newsletter.db.lock'))).isDirectory()).toBe(true);
  });

  it('gives the lock once; a second acquire in the same process gets null at once', async () => {
    const first = await acquire();
    expect(first).not.toBeNull();
    expect(first?.compromised).toBeNull();
    expect(await acquire()).toBeNull();
  });

  it('can be taken again after release; release is idempotent', async () => {
    const first = await acquire();
    await first?.release();
    await first?.release();
    await expect(stat(runLockPath({ databasePath }))).rejects.toMatchObject({ code: 'ENOENT' });

    const second = await acquire();
    expect(second).not.toBeNull();
  });

  it('returns null while another live process holds the lock', async () => {
    const lockPath = runLockPath({ databasePath });
    holders.push(
      await startLockHolder({
        databasePath,
        lockPath,
        staleMs: DEFAULT_STALE_MS,
        updateMs: DEFAULT_UPDATE_MS,
      }),
    );
    expect(await acquire()).toBeNull();
  });

  it('takes over a lock left by a killed process once it is older than staleMs', async () => {
    const lockPath = runLockPath({ databasePath });
    const holder = await startLockHolder({
      databasePath,
      lockPath,
      staleMs: DEFAULT_STALE_MS,
      updateMs: DEFAULT_UPDATE_MS,
    });
    holders.push(holder);
    await holder.kill();

    // SIGKILL left the folder behind; it still looks fresh, so nobody may take it yet.
    await stat(lockPath);
    expect(await acquire()).toBeNull();

    await ageLock(lockPath, DEFAULT_STALE_MS + 60_000);
    const lock = await acquire();
    expect(lock).not.toBeNull();
    expect((await stat(lockPath)).mtime.getTime()).toBeGreaterThan(Date.now() - DEFAULT_STALE_MS);
  });

  it('calls onCompromised, instead of throwing, when someone else touches a held lock', async () => {
    let resolveCompromise: (error: Error) => void = () => {};
    const compromise = new Promise<Error>((resolve) => {
      resolveCompromise = resolve;
    });
    const lock = await acquireRunLock({ databasePath, updateMs: 1000, onCompromised: resolveCompromise });
    expect(lock).not.toBeNull();
    if (!lock) return;
    held.push(lock);

    // What a second run does when it takes over a lock it believes stale.
    await ageLock(lock.path, 30_000);

    const error = await compromise;
    expect(error).toMatchObject({ code: 'ECOMPROMISED' });
    expect(lock.compromised).toBe(error);
    await lock.release();
  });

  it('calls onCompromised when the lock folder vanishes', async () => {
    let resolveCompromise: (error: Error) => void = () => {};
    const compromise = new Promise<Error>((resolve) => {
      resolveCompromise = resolve;
    });
    const lock = await acquireRunLock({ databasePath, updateMs: 1000, onCompromised: resolveCompromise });
    if (!lock) throw new Error('expected the lock');
    held.push(lock);

    await rmdir(lock.path);

    expect(await compromise).toMatchObject({ code: 'ECOMPROMISED' });
    await lock.release();
  });

  it('keeps a throwing onCompromised handler from crashing the process', async () => {
    const warned = new Promise<Error>((resolve) => {
      const listener = (warning: Error): void => {
        if (!warning.message.startsWith('run lock:')) return;
        process.off('warning', listener);
        resolve(warning);
      };
      process.on('warning', listener);
    });
    const lock = await acquireRunLock({
      databasePath,
      updateMs: 1000,
      onCompromised: () => {
        throw new Error('handler bug');
      },
    });
    if (!lock) throw new Error('expected the lock');
    held.push(lock);

    await ageLock(lock.path, 30_000);

    expect((await warned).message).toContain('handler bug');
    expect(lock.compromised).toMatchObject({ code: 'ECOMPROMISED' });
  });

  it('throws a ConfigError when the lock folder does not exist', async () => {
    await expect(acquire({ lockDir: path.join(dir, 'missing') })).rejects.toBeInstanceOf(ConfigError);
  });
});

describe('inspectRunLock', () => {
  it('reports free, held, and stale', async () => {
    const lockPath = runLockPath({ databasePath });
    expect(await inspectRunLock({ databasePath })).toEqual({ held: false, path: lockPath });

    const lock = await acquire();
    const whileHeld = await inspectRunLock({ databasePath });
    expect(whileHeld).toMatchObject({ held: true, path: lockPath, stale: false });
    expect(whileHeld.mtime).toBeInstanceOf(Date);

    await ageLock(lockPath, DEFAULT_STALE_MS + 1000);
    expect(await inspectRunLock({ databasePath })).toMatchObject({ held: false, stale: true });
    // A shorter threshold than the lock's age also reads as stale; a longer one as held.
    expect(await inspectRunLock({ databasePath, staleMs: DEFAULT_STALE_MS * 10 })).toMatchObject({
      held: true,
      stale: false,
    });

    await lock?.release();
    held.splice(0);
    expect(await inspectRunLock({ databasePath })).toEqual({ held: false, path: lockPath });
  });
});
