/**
 * Subscriber data is owner-only whatever the umask (issue 13, section 5; DESIGN, "Configuration").
 * Every CLI process here runs under umask 022, the usual default, under which a plain
 * `writeFile` makes 0644 files that every local user can read: the database and its -wal/-shm,
 * the outbox's .eml files and their folder, and previews must come out 0600 (folders 0700) all
 * the same. `doctor` warns about a database that others can read.
 */
import { chmodSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, describeRun, makeWorkspace, type Workspace } from '../helpers/cli.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
beforeAll(() => assertBuilt());

const modeOf = (file: string): string => (statSync(file).mode & 0o777).toString(8).padStart(4, '0');

/** A workspace whose every CLI run starts with umask 022, set in the child before any of our code. */
async function workspaceUnderUmask022(): Promise<{ ws: Workspace; umask: string[] }> {
  const ws = await makeWorkspace('newsletter-modes-');
  cleanups.push(() => ws.cleanup());
  const preload = await ws.write('umask-022.mjs', 'process.umask(0o022);\n');
  return { ws, umask: ['--import', preload] };
}

describe('files the tool creates, under umask 022', () => {
  it('the umask really is 022 in the child (a file it writes without a mode is 0644)', async () => {
    const { ws, umask } = await workspaceUnderUmask022();
    const probe = ws.path('probe.txt');
    const script = await ws.write(
      'probe.mjs',
      `process.umask(0o022); (await import('node:fs')).writeFileSync(${JSON.stringify(probe)}, 'x');\n`,
    );
    const { spawnSync } = await import('node:child_process');
    expect(spawnSync(process.execPath, [script]).status).toBe(0);
    expect(modeOf(probe)).toBe('0644');
    expect(umask[1]).toMatch(/umask-022\.mjs$/);
  });

  it('database, -wal, -shm, outbox folder and .eml files, previews: 0600 files, 0700 folders', async () => {
    const { ws, umask } = await workspaceUnderUmask022();
    ws.env.NEWSLETTER_TRANSPORT = 'file:./outbox/news';
    await ws.ok(['init'], { nodeArgs: umask });
    expect(modeOf(ws.db)).toBe('0600');

    // Held open from here on, so that the -wal and -shm the CLI writes stay on disk to be looked at
    // (the last connection to close removes them).
    const reader = new Database(ws.db, { readonly: true });
    cleanups.push(async () => {
      reader.close();
    });
    reader.prepare('SELECT count(*) FROM sqlite_master').get();

    const { file } = await ws.writeCsv(2);
    await ws.ok(['recipients', 'import', file, '--list', 'readers'], { nodeArgs: umask });
    const id = await ws.createDue();
    await ws.ok(['send-due'], { nodeArgs: umask });
    for (const side of [`${ws.db}-wal`, `${ws.db}-shm`])
      expect({ side, mode: modeOf(side) }).toEqual({ side, mode: '0600' });
    expect(modeOf(ws.db)).toBe('0600');

    // Both folders of file:./outbox/news were made by the tool.
    expect(modeOf(ws.path('outbox'))).toBe('0700');
    expect(modeOf(ws.path('outbox', 'news'))).toBe('0700');
    const emls = readdirSync(ws.path('outbox', 'news')).filter((name) => name.endsWith('.eml'));
    expect(emls).toHaveLength(2);
    for (const eml of emls) expect(modeOf(ws.path('outbox', 'news', eml))).toBe('0600');

    // A new preview, and one rewritten over a file that was 0644: both 0600.
    await ws.ok(['preview', String(id), '--to-file', 'preview.html'], { nodeArgs: umask });
    expect(modeOf(ws.path('preview.html'))).toBe('0600');
    const old = ws.path('old-preview.html');
    writeFileSync(old, 'old');
    chmodSync(old, 0o644);
    await ws.ok(['preview', String(id), '--to-file', old], { nodeArgs: umask });
    expect(modeOf(old)).toBe('0600');
  });

  it('doctor warns about a database (or a -wal) that others can read, and about an open folder', async () => {
    const { ws, umask } = await workspaceUnderUmask022();
    ws.env.NEWSLETTER_TRANSPORT = 'file:./outbox';
    await ws.ok(['init'], { nodeArgs: umask });
    const cron = await ws.write(
      'crontab',
      `MAILTO=ops@example.org\n* * * * * newsletter --database ${ws.db} send-due\n`,
    );
    const check = async () => {
      const result = await ws.run(['doctor', '--json', '--crontab', cron], { nodeArgs: umask });
      const report = JSON.parse(result.stdout) as {
        checks: { name: string; level: string; message: string; fix?: string }[];
      };
      const found = report.checks.find((c) => c.name === 'permissions');
      if (!found) throw new Error(`no permissions check: ${describeRun(['doctor'], result)}`);
      return found;
    };
    expect(await check()).toMatchObject({ level: 'ok' });

    chmodSync(ws.db, 0o644);
    const readable = await check();
    expect(readable.level).toBe('warning');
    expect(readable.message).toContain(`${ws.db} (0644)`);
    expect(readable.fix).toContain('chmod 600');

    chmodSync(ws.db, 0o600);
    chmodSync(ws.dir, 0o777);
    try {
      const open = await check();
      expect(open.level).toBe('warning');
      expect(open.message).toContain(`Others can write the database's folder ${ws.dir}`);
    } finally {
      chmodSync(ws.dir, 0o700);
    }
  });
});
