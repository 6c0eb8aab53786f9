/**
 * Where the run lock goes (issue 13, section 6): beside a SQLite file whose folder only its owner
 * can write; otherwise, and always for PostgreSQL, in a private per-user folder:
 * $RUNTIME_DIRECTORY (systemd), else $XDG_STATE_HOME/newsletter, else ~/.local/state/newsletter.
 * Never a predictable name in a world-writable folder such as /tmp.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { lockLocationOf, privateLockDir } from '../../src/host/lock-location.js';

const made: string[] = [];
afterEach(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function folder(mode: number): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'newsletter-lockloc-'));
  made.push(dir);
  chmodSync(dir, mode);
  return dir;
}

const POSTGRES = { kind: 'postgres', url: 'postgres://news:S3cret%40pw@db.internal/news' } as const;

describe('privateLockDir', () => {
  it('prefers $RUNTIME_DIRECTORY (its first entry), then $XDG_STATE_HOME/newsletter, then ~/.local/state/newsletter', () => {
    const env = {
      RUNTIME_DIRECTORY: '/run/newsletter:/run/other',
      XDG_STATE_HOME: '/x/state',
      HOME: '/home/ann',
    };
    expect(privateLockDir(env)).toBe('/run/newsletter');
    expect(privateLockDir({ ...env, RUNTIME_DIRECTORY: undefined })).toBe('/x/state/newsletter');
    expect(privateLockDir({ HOME: '/home/ann' })).toBe('/home/ann/.local/state/newsletter');
  });

  it('ignores relative values, as the XDG spec says', () => {
    expect(privateLockDir({ RUNTIME_DIRECTORY: 'run', XDG_STATE_HOME: 'state', HOME: '/home/ann' })).toBe(
      '/home/ann/.local/state/newsletter',
    );
  });
});

describe('lockLocationOf', () => {
  const env = { XDG_STATE_HOME: '/x/state', HOME: '/home/ann' };

  it('PostgreSQL: the private folder, named from the URL without its password; never /tmp', () => {
    const location = lockLocationOf(POSTGRES, null, env);
    expect(location.private).toBe(true);
    expect(location.lockDir).toBe('/x/state/newsletter');
    expect(location.databasePath).toMatch(/^\/x\/state\/newsletter\/postgres-[0-9a-f]{16}\.db$/);
    expect(location.databasePath).not.toContain('S3cret');
    // The same database whatever the password's spelling: one lock.
    const other = lockLocationOf(
      { kind: 'postgres', url: 'postgres://news:other@db.internal/news' },
      null,
      env,
    );
    expect(other.databasePath).toBe(location.databasePath);
  });

  it('SQLite in a folder only its owner can write: beside the database', () => {
    const dir = folder(0o700);
    const db = path.join(dir, 'news.db');
    expect(lockLocationOf({ kind: 'sqlite', path: db }, null, env)).toEqual({
      databasePath: db,
      lockDir: dir,
      private: false,
    });
    expect(
      lockLocationOf({ kind: 'sqlite', path: path.join(folder(0o755), 'news.db') }, null, env).private,
    ).toBe(false);
  });

  it('SQLite in a folder others can write (/tmp, a group folder): the private folder', () => {
    for (const mode of [0o1777, 0o777, 0o770]) {
      const db = path.join(folder(mode), 'news.db');
      expect(lockLocationOf({ kind: 'sqlite', path: db }, null, env)).toEqual({
        databasePath: db,
        lockDir: '/x/state/newsletter',
        private: true,
        lockName: expect.stringMatching(/^news\.db-[0-9a-f]{16}\.lock$/),
      });
    }
    expect(lockLocationOf({ kind: 'sqlite', path: '/tmp/news.db' }, null, env).lockDir).toBe(
      '/x/state/newsletter',
    );
  });

  it('NEWSLETTER_LOCK_DIR wins, for both kinds', () => {
    expect(lockLocationOf({ kind: 'sqlite', path: '/tmp/news.db' }, '/srv/locks', env)).toEqual({
      databasePath: '/tmp/news.db',
      lockDir: '/srv/locks',
      private: false,
    });
    expect(lockLocationOf(POSTGRES, '/srv/locks', env).lockDir).toBe('/srv/locks');
  });
});
