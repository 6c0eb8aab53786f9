/**
 * `newsletter doctor` through the built CLI, against real files and processes: a crontab with a
 * duplicated send-due line, a lock left by a killed process, a database copied to a "cloned"
 * host, an SMTP server that is not there (a closed port on 127.0.0.1) and one that refuses the
 * password. Every run passes --crontab, so the host's own crontabs never leak into a test.
 */
import { copyFileSync, mkdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, closedPort, describeRun, makeWorkspace, type Workspace } from '../helpers/cli.js';
import { type LockHolder, startLockHolder } from '../helpers/lock-holder.js';
import { type SmtpSink, startSmtpSink } from '../helpers/smtp-sink.js';

interface Check {
  name: string;
  level: 'ok' | 'warning' | 'problem';
  message: string;
  fix?: string;
}
interface Report {
  ok: boolean;
  problems: number;
  warnings: number;
  exitCode: number;
  checks: Check[];
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

beforeAll(() => assertBuilt());

async function workspace(): Promise<Workspace> {
  const ws = await makeWorkspace('newsletter-doctor-');
  cleanups.push(() => ws.cleanup());
  ws.env.NEWSLETTER_TRANSPORT = 'file:./outbox';
  await ws.ok(['init']);
  return ws;
}

/** A crontab in the workspace with `lines`, MAILTO first unless told otherwise. */
async function crontab(ws: Workspace, name: string, lines: string[], mailto = true): Promise<string> {
  return ws.write(name, `${mailto ? 'MAILTO=ops@example.org\n' : ''}${lines.join('\n')}\n`);
}

const sendDueLine = (ws: Workspace) => `* * * * * newsletter --database ${ws.db} send-due`;

async function doctor(ws: Workspace, args: string[] = [], env: Record<string, string | undefined> = {}) {
  const all = ['doctor', '--json', ...args];
  const result = await ws.run(all, { env });
  let report: Report;
  try {
    report = JSON.parse(result.stdout) as Report;
  } catch {
    throw new Error(`doctor did not print one JSON document: ${describeRun(all, result)}`);
  }
  const check = (name: string): Check => {
    const found = report.checks.find((c) => c.name === name);
    if (!found) throw new Error(`no "${name}" check: ${JSON.stringify(report.checks, null, 2)}`);
    return found;
  };
  return { result, report, check };
}

describe('doctor', () => {
  it('a healthy setup: every check ok, exit 0, and the JSON shape', async () => {
    const ws = await workspace();
    const cron = await crontab(ws, 'crontab', [sendDueLine(ws)]);
    const { result, report } = await doctor(ws, ['--crontab', cron]);
    expect(result.code, describeRun(['doctor'], result)).toBe(0);
    expect(report).toMatchObject({ ok: true, problems: 0, warnings: 0, exitCode: 0 });
    expect(report.checks.map((c) => c.name)).toEqual([
      'configuration',
      'variables',
      'return-path',
      'database',
      'schema',
      'integrity',
      'filesystem',
      'permissions',
      'host',
      'hosts',
      'lock',
      'transport',
      'cron',
      'cron-mailto',
      'sending-time',
      'unknown',
      'growth',
    ]);
    for (const check of report.checks) {
      expect(check.level, `${check.name}: ${check.message}`).toBe('ok');
      expect(Object.keys(check).sort()).toEqual(['level', 'message', 'name']);
    }

    // The text form: one line per check, and the verdict.
    const text = await ws.run(['doctor', '--crontab', cron]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^ok\s+integrity\s+PRAGMA integrity_check: ok\.$/m);
    expect(text.stdout).toContain('doctor: all 17 checks are ok.');
  });

  it('finds a send-due line for the same database duplicated in a given crontab (and across cron.d)', async () => {
    const ws = await workspace();
    const user = await crontab(ws, 'user.crontab', [
      sendDueLine(ws),
      '* * * * * newsletter --database /elsewhere/other.db send-due',
      sendDueLine(ws),
    ]);
    mkdirSync(ws.path('cron.d'));
    // /etc/cron.d format: a user field before the command, and its own MAILTO.
    const system = await crontab(ws, 'cron.d/newsletter', [
      `* * * * * root cd ${ws.dir} && newsletter send-due --max-seconds 50`,
    ]);
    const { result, check } = await doctor(ws, ['--crontab', user, '--crontab', system], {
      NEWSLETTER_DATABASE: undefined,
    });
    // The database comes from ./newsletter.db in the folder the cron.d line cd's into.
    expect(result.code, describeRun(['doctor'], result)).toBe(0);
    const cron = check('cron');
    expect(cron.level).toBe('warning');
    expect(cron.message).toContain('appears 3 times');
    expect(cron.message).toContain(`${user}:2`);
    expect(cron.message).toContain(`${user}:4`);
    expect(cron.message).toContain(`${system}:2`);
    expect(cron.message).not.toContain(`${user}:3`);
    expect(cron.fix).toContain('Keep exactly one line');
  });

  it('warns about a missing send-due line and a missing MAILTO', async () => {
    const ws = await workspace();
    const none = await crontab(ws, 'none.crontab', ['0 3 * * * /usr/local/bin/backup']);
    expect((await doctor(ws, ['--crontab', none])).check('cron')).toMatchObject({
      level: 'warning',
      message: expect.stringContaining('No send-due line'),
    });
    const noMail = await crontab(ws, 'nomail.crontab', [sendDueLine(ws)], false);
    const { check } = await doctor(ws, ['--crontab', noMail]);
    expect(check('cron').level).toBe('ok');
    expect(check('cron-mailto')).toMatchObject({
      level: 'warning',
      message: expect.stringContaining('no MAILTO'),
    });
  });

  describe('the run lock', () => {
    let holder: LockHolder | null = null;
    afterAll(async () => holder?.kill());

    it('held by a live process, then left stale by it once killed, then stale by age', async () => {
      const ws = await workspace();
      const cron = await crontab(ws, 'crontab', [sendDueLine(ws)]);
      const lockPath = `${ws.db}.lock`;
      holder = await startLockHolder({ databasePath: ws.db, lockPath, staleMs: 120_000, updateMs: 10_000 });
      const pid = holder.child.pid as number;
      // What send-due writes beside its lock once it holds it.
      writeFileSync(`${lockPath}.owner`, JSON.stringify({ pid, hostname: hostname() }));

      const held = (await doctor(ws, ['--crontab', cron])).check('lock');
      expect(held.level).toBe('ok');
      expect(held.message).toContain(`held by pid ${pid} on ${hostname()} since`);

      await holder.kill();
      holder = null;
      const dead = await doctor(ws, ['--crontab', cron]);
      expect(dead.result.code).toBe(0);
      expect(dead.check('lock')).toMatchObject({
        level: 'warning',
        message: expect.stringContaining(`left by pid ${pid} on ${hostname()}`),
        fix: expect.stringContaining('takes a dead process'),
      });
      expect(dead.check('lock').message).toContain('gone');

      // No owner file, and not refreshed for ten minutes: stale by age.
      rmSync(`${lockPath}.owner`);
      const old = new Date(Date.now() - 600_000);
      utimesSync(lockPath, old, old);
      expect((await doctor(ws, ['--crontab', cron])).check('lock')).toMatchObject({
        level: 'warning',
        message: expect.stringContaining('is stale'),
      });
    });
  });

  it('a cloned database: the binding names both host ids and `host adopt`; then two hosts in runs', async () => {
    const ws = await workspace();
    const { file } = await ws.writeCsv(2);
    await ws.ok(['recipients', 'import', file, '--list', 'readers']);
    const template = path.join(ws.copyTemplates(), 'welcome.mjml');
    const create = ['create', '--subject', 'Hi {{name}}', '--template', template, '--list', 'readers'];
    await ws.ok([...create, '--at', 'now']);
    await ws.ok(['send-due']);

    // The clone: a copy of the file on a host with another id (no process has it open).
    const cloneDb = ws.path('clone.db');
    copyFileSync(ws.db, cloneDb);
    const asClone = { NEWSLETTER_DATABASE: cloneDb, NEWSLETTER_HOST_ID: 'test-host-b' };
    const cron = await crontab(ws, 'crontab', [`* * * * * newsletter --database ${cloneDb} send-due`]);
    const refused = await doctor(ws, ['--crontab', cron], asClone);
    expect(refused.result.code, describeRun(['doctor'], refused.result)).toBe(8);
    expect(refused.report).toMatchObject({ ok: false, problems: 1, exitCode: 8 });
    const host = refused.check('host');
    expect(host.level).toBe('problem');
    expect(host.message).toContain('bound to host test-host-a');
    expect(host.message).toContain('this is host test-host-b');
    expect(host.fix).toContain('newsletter host adopt');

    await ws.ok(['host', 'adopt'], { env: asClone });
    await ws.ok([...create, '--at', 'now'], { env: asClone });
    await ws.ok(['send-due'], { env: asClone });
    const adopted = await doctor(ws, ['--crontab', cron], asClone);
    expect(adopted.result.code).toBe(0);
    expect(adopted.check('host').level).toBe('ok');
    const hosts = adopted.check('hosts');
    expect(hosts.level).toBe('warning');
    expect(hosts.message).toContain('2 different hosts');
    expect(hosts.message).toContain('test-host-a');
    expect(hosts.message).toContain('test-host-b (bound)');
  });

  describe('the transport', () => {
    let sink: SmtpSink;
    beforeAll(async () => {
      sink = await startSmtpSink({ auth: { user: 'news', password: 'right-password' } });
    });
    afterAll(async () => sink?.close());

    it('an unreachable SMTP server (a closed port) is a problem: exit 8', async () => {
      const ws = await workspace();
      const cron = await crontab(ws, 'crontab', [sendDueLine(ws)]);
      const port = await closedPort();
      const { result, report, check } = await doctor(ws, ['--crontab', cron], {
        NEWSLETTER_TRANSPORT: `smtp://news:hunter2@127.0.0.1:${port}`,
      });
      expect(result.code).toBe(8);
      expect(report.problems).toBe(1);
      const transport = check('transport');
      expect(transport.level).toBe('problem');
      expect(transport.message).toContain(`127.0.0.1:${port}`);
      expect(transport.message).toContain('ECONNREFUSED');
      expect(transport.fix).toContain('reachable');
      expect(result.stdout).not.toContain('hunter2');
    });

    it('verifies authentication without sending: a wrong password is a problem, the right one ok', async () => {
      const ws = await workspace();
      const cron = await crontab(ws, 'crontab', [sendDueLine(ws)]);
      const wrong = await doctor(ws, ['--crontab', cron], {
        NEWSLETTER_TRANSPORT: `smtp://news:wrong-password@127.0.0.1:${sink.port}`,
        NEWSLETTER_SMTP_CA: sink.caPath,
      });
      expect(wrong.result.code).toBe(8);
      expect(wrong.check('transport')).toMatchObject({
        level: 'problem',
        message: expect.stringContaining('535'),
        fix: expect.stringContaining('password'),
      });
      const right = await doctor(ws, ['--crontab', cron], {
        NEWSLETTER_TRANSPORT: `smtp://news:right-password@127.0.0.1:${sink.port}`,
        NEWSLETTER_SMTP_CA: sink.caPath,
      });
      expect(right.result.code, describeRun(['doctor'], right.result)).toBe(0);
      expect(right.check('transport').message).toContain('authenticated as news');
      expect(sink.total).toBe(0);
    });
  });

  it('unknown deliveries waiting for reconcile are a problem', async () => {
    const ws = await workspace();
    const sink = await startSmtpSink({
      faults: [{ to: 'reader1@example.net', fault: { kind: 'cutAfterData' } }],
    });
    cleanups.push(() => sink.close());
    const env = { NEWSLETTER_TRANSPORT: sink.url };
    const { file } = await ws.writeCsv(2);
    await ws.ok(['recipients', 'import', file, '--list', 'readers']);
    const template = path.join(ws.copyTemplates(), 'welcome.mjml');
    await ws.ok(['create', '--subject', 'Hi', '--template', template, '--list', 'readers', '--at', 'now']);
    const sent = await ws.run(['send-due'], { env });
    expect(sent.code, describeRun(['send-due'], sent)).toBe(8);
    const cron = await crontab(ws, 'crontab', [sendDueLine(ws)]);
    const { result, check } = await doctor(ws, ['--crontab', cron], env);
    expect(result.code).toBe(8);
    expect(check('unknown')).toMatchObject({
      level: 'problem',
      message: expect.stringContaining('newsletter 1: 1 unknown'),
      fix: expect.stringContaining('reconcile'),
    });

    // --quiet text: only what is not ok.
    const quiet = await ws.run(['--quiet', 'doctor', '--crontab', cron], { env });
    expect(quiet.code).toBe(8);
    expect(quiet.stdout).toMatch(/^problem\s+unknown\s+/m);
    expect(quiet.stdout).not.toMatch(/^ok\s/m);
  });

  it('an invalid configuration is a finding, not a crash: exit 8 with the problems listed', async () => {
    const ws = await workspace();
    const { result, report } = await doctor(ws, [], { NEWSLETTER_LEASE: 'forever', NEWSLETTER_RATE: 'fast' });
    expect(result.code).toBe(8);
    expect(report.checks).toEqual([
      expect.objectContaining({
        name: 'configuration',
        level: 'problem',
        message: expect.stringMatching(/2 problems.*NEWSLETTER_RATE "fast".*NEWSLETTER_LEASE "forever"/),
      }),
    ]);
  });
});
