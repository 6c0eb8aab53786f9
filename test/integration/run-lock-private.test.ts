/**
 * The per-user lock folder (issue 13, section 6): created 0700 when missing, and refused when
 * someone else owns it or could write in it, since whoever can create the lock there can stop every
 * run. The lock's own folder and owner file are owner-only whatever the umask.
 */
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/domain/errors.js';
import { ExitCode } from '../../src/domain/exit-codes.js';
import { acquireRunLock, type RunLock } from '../../src/host/run-lock.js';

const made: string[] = [];
const held: RunLock[] = [];
afterEach(async () => {
  for (const lock of held.splice(0)) await lock.release();
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const modeOf = (file: string): number => statSync(file).mode & 0o777;

function base(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'newsletter-private-lock-'));
  made.push(dir);
  return dir;
}

async function take(lockDir: string) {
  return acquireRunLock({
    databasePath: path.join(lockDir, 'postgres-0123456789abcdef.db'),
    lockDir,
    private: true,
    onCompromised: () => undefined,
  });
}

describe('the private lock folder', () => {
  it('is created 0700 (with its parents) under umask 022; the lock folder is 0700, the owner file 0600', async () => {
    const lockDir = path.join(base(), 'state', 'newsletter');
    const before = process.umask(0o022);
    try {
      const lock = await take(lockDir);
      expect(lock).not.toBeNull();
      held.push(lock as RunLock);
      expect(modeOf(lockDir)).toBe(0o700);
      expect(modeOf(path.dirname(lockDir))).toBe(0o700);
      expect(modeOf((lock as RunLock).path)).toBe(0o700);
      expect(modeOf(`${(lock as RunLock).path}.owner`)).toBe(0o600);
    } finally {
      process.umask(before);
    }
  });

  it('is refused (exit 3, saying why and what to do) when others can write it', async () => {
    const lockDir = path.join(base(), 'newsletter');
    mkdirSync(lockDir);
    chmodSync(lockDir, 0o777);
    const error = await take(lockDir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).exitCode).toBe(ExitCode.config);
    expect((error as Error).message).toContain(
      `${lockDir} can be written by its group or others (mode 0777)`,
    );
    expect((error as ConfigError).details.join(' ')).toContain('NEWSLETTER_LOCK_DIR');
    // Nothing was created in it.
    expect(statSync(lockDir).isDirectory()).toBe(true);
  });

  it.runIf(process.getuid?.() === 0)(
    'is refused when it belongs to another user (made by "nobody")',
    async () => {
      const lockDir = path.join(base(), 'newsletter');
      mkdirSync(lockDir, { mode: 0o700 });
      chownSync(lockDir, 65534, 65534);
      const error = await take(lockDir).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toContain('belongs to uid 65534');
    },
  );
});
