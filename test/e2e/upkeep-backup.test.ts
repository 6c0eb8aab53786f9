/**
 * `newsletter backup` (issue 15): a copy taken while a run is in the middle of a send (held at
 * its first claim by a failpoint, with its claim committed and not yet checkpointed) is whole and
 * consistent, owner-only, and carries the host binding: restored on another machine it refuses
 * to send (the clone guard, exit 7) until `host adopt` there. PostgreSQL refuses with pg_dump
 * advice (exit 4) without connecting.
 */
import { copyFile, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { perTest } from '../helpers/workspace.js';

const BATCH = 5;
const CLONE_REFUSED = 7;
const INPUT = 4;

const resources = perTest();
const folders: string[] = [];
afterEach(async () => {
  for (const dir of folders.splice(0)) await rm(dir, { recursive: true, force: true });
});

function readCopy<T>(file: string, sql: string): T[] {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return db.prepare(sql).all() as T[];
  } finally {
    db.close();
  }
}

describe('newsletter backup', () => {
  it('copies a database mid-send consistently; the restored copy is refused by the clone guard until host adopt', async () => {
    const sink = await resources.sink();
    const ws = await resources.workspace({
      recipients: 20,
      transport: sink.url,
      env: { NEWSLETTER_BATCH: String(BATCH) },
    });
    const paused = ws.start(['send-due'], { NEWSLETTER_FAILPOINTS: 'after-claim' });
    await paused.waitForFailpoint('after-claim');

    const backupDir = await mkdtemp(path.join(tmpdir(), 'newsletter-backup-'));
    folders.push(backupDir);
    const backupFile = path.join(backupDir, 'newsletter-backup.db');
    const taken = await ws.run(['backup', backupFile, '--json']);
    expect(taken).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(taken.stdout)).toMatchObject({ file: backupFile, integrity: ['ok'] });
    expect((await stat(backupFile)).mode & 0o777).toBe(0o600);

    // A second backup to the same name is refused: a backup never overwrites.
    expect(await ws.run(['backup', backupFile])).toMatchObject({ code: INPUT });

    // The send goes on while and after the copy is taken.
    paused.signal('SIGCONT');
    expect((await paused.exited).code).toBe(0);

    // Restored elsewhere, as from a backup server: a closed copy may be copied like any file.
    const restoreDir = await mkdtemp(path.join(tmpdir(), 'newsletter-restore-'));
    folders.push(restoreDir);
    const restored = path.join(restoreDir, 'newsletter.db');
    await copyFile(backupFile, restored);
    expect(readCopy<{ integrity_check: string }>(restored, 'PRAGMA integrity_check')).toEqual([
      { integrity_check: 'ok' },
    ]);
    // The snapshot holds the run's committed claim, and nothing half-written.
    expect(
      readCopy<{ state: string; n: number }>(
        restored,
        'SELECT state, count(*) AS n FROM deliveries GROUP BY state',
      ),
    ).toEqual([{ state: 'claimed', n: BATCH }]);
    expect(readCopy<{ status: string }>(restored, 'SELECT status FROM newsletters')).toEqual([
      { status: 'sending' },
    ]);

    const elsewhere = { NEWSLETTER_DATABASE: restored, HOME: restoreDir, NEWSLETTER_HOST_ID: 'host-b' };
    const refused = await ws.run(['send-due'], elsewhere);
    expect(refused.code).toBe(CLONE_REFUSED);
    expect(await ws.run(['host', 'adopt'], elsewhere)).toMatchObject({ code: 0 });
    const adopted = await ws.run(['send-due', '--dry-run'], elsewhere);
    expect(adopted.code).not.toBe(CLONE_REFUSED);
    const host = JSON.parse((await ws.ok(['host', '--json'], elsewhere)).stdout);
    expect(host).toMatchObject({ boundHostId: 'host-b', matches: true });
  });

  it('refuses a PostgreSQL database with the pg_dump advice, without connecting', async () => {
    const sink = await resources.sink();
    const ws = await resources.workspace({ recipients: 1, transport: sink.url });
    const result = await ws.run(['backup', path.join(ws.dir, 'copy.db')], {
      NEWSLETTER_DATABASE: 'postgres://nobody:secret@127.0.0.1:1/none',
    });
    expect(result.code).toBe(INPUT);
    expect(result.stderr).toContain('pg_dump');
    expect(result.stderr).not.toContain('secret');
  });
});
