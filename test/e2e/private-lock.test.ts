/**
 * A lock nobody else can hold (issue 13, section 6), through the built CLI. A SQLite database in a
 * folder others can write (here: 1777, like /tmp) keeps its run lock in the private per-user folder
 * ($XDG_STATE_HOME/newsletter here), created 0700; a folder there that "another user" prepared
 * (mode 0777) is refused with exit 3, and `doctor` says where the lock is and who holds it.
 */
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, describeRun, makeWorkspace, type Workspace } from '../helpers/cli.js';
import { type LockHolder, startLockHolder } from '../helpers/lock-holder.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
beforeAll(() => assertBuilt());

interface Check {
  name: string;
  level: string;
  message: string;
  fix?: string;
}

/** A database in a folder anyone can write, and a private state folder that does not exist yet. */
async function sharedFolderWorkspace(): Promise<{
  ws: Workspace;
  lockDir: string;
  lockPath: string;
  cron: string;
}> {
  const ws = await makeWorkspace('newsletter-lock-');
  cleanups.push(async () => {
    chmodSync(ws.dir, 0o700);
    await ws.cleanup();
  });
  ws.env.NEWSLETTER_TRANSPORT = 'file:./outbox';
  ws.env.XDG_STATE_HOME = ws.path('state');
  await ws.ok(['init']);
  const { file } = await ws.writeCsv(1);
  await ws.ok(['recipients', 'import', file, '--list', 'readers']);
  chmodSync(ws.dir, 0o1777);
  const cron = await ws.write(
    'crontab',
    `MAILTO=ops@example.org\n* * * * * newsletter --database ${ws.db} send-due\n`,
  );
  const lockDir = ws.path('state', 'newsletter');
  // Named after the database's whole path: another news.db in another shared folder has its own.
  const lockName = `newsletter.db-${createHash('sha256').update(ws.db).digest('hex').slice(0, 16)}.lock`;
  return { ws, lockDir, lockPath: path.join(lockDir, lockName), cron };
}

async function lockCheck(ws: Workspace, cron: string): Promise<Check> {
  const result = await ws.run(['doctor', '--json', '--crontab', cron]);
  const report = JSON.parse(result.stdout) as { checks: Check[] };
  const found = report.checks.find((c) => c.name === 'lock');
  if (!found) throw new Error(`no lock check: ${describeRun(['doctor'], result)}`);
  return found;
}

describe('the run lock of a database in a folder others can write', () => {
  let holder: LockHolder | null = null;
  afterEach(async () => {
    await holder?.kill();
    holder = null;
  });

  it('lives in $XDG_STATE_HOME/newsletter, created 0700, never beside the database', async () => {
    const { ws, lockDir, lockPath, cron } = await sharedFolderWorkspace();
    await ws.createDue();
    await ws.ok(['send-due']);
    expect(statSync(lockDir).mode & 0o777).toBe(0o700);
    expect(existsSync(`${ws.db}.lock`)).toBe(false);

    const free = await lockCheck(ws, cron);
    expect(free.level).toBe('ok');
    expect(free.message).toContain(lockPath);

    // Held: doctor names the place, the process, its host and since when.
    holder = await startLockHolder({ databasePath: ws.db, lockPath, staleMs: 120_000, updateMs: 10_000 });
    const pid = holder.child.pid as number;
    writeFileSync(`${lockPath}.owner`, JSON.stringify({ pid, hostname: hostname() }));
    const held = await lockCheck(ws, cron);
    expect(held.level).toBe('ok');
    expect(held.message).toMatch(
      new RegExp(
        `The run lock ${lockPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is held by pid ${pid} on ${hostname()} since \\d{4}-`,
      ),
    );
  });

  it('a folder prepared by someone else (mode 0777) is refused: exit 3, and a doctor problem', async () => {
    const { ws, lockDir, lockPath, cron } = await sharedFolderWorkspace();
    mkdirSync(lockDir, { recursive: true });
    chmodSync(lockDir, 0o777);
    await ws.createDue();
    const refused = await ws.run(['send-due']);
    expect(refused.code, describeRun(['send-due'], refused)).toBe(3);
    expect(refused.stderr).toContain(`The run lock folder ${lockDir} can be written by its group or others`);
    expect(refused.stderr).not.toMatch(/^\s+at /m);
    expect(existsSync(lockPath)).toBe(false);

    const check = await lockCheck(ws, cron);
    expect(check.level).toBe('problem');
    expect(check.message).toContain(lockDir);
    expect(check.fix).toContain('chmod 700');
  });

  it('$RUNTIME_DIRECTORY (systemd) comes first', async () => {
    const { ws, lockPath, cron } = await sharedFolderWorkspace();
    const runtime = ws.path('run');
    mkdirSync(runtime, { mode: 0o700 });
    await ws.createDue();
    await ws.ok(['send-due'], { env: { RUNTIME_DIRECTORY: runtime } });
    const check = (
      await ws.run(['doctor', '--json', '--crontab', cron], { env: { RUNTIME_DIRECTORY: runtime } })
    ).stdout;
    expect(check).toContain(path.join(runtime, path.basename(lockPath)));
    expect(existsSync(ws.path('state', 'newsletter'))).toBe(false);
  });
});
