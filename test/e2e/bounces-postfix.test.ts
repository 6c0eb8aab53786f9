/**
 * A real MTA closes the loop (issue 18): the built CLI sends a newsletter through Debian's
 * Postfix on loopback (test/helpers/postfix.ts), which relays it to a second local SMTP server
 * that refuses some recipients with 550 5.1.1. Postfix itself then writes the DSNs, to the VERP
 * return path (`bounces+TOKEN@example.org`, a domain it delivers locally, recipient_delimiter
 * `+`), and delivers them as a site would:
 *
 * - through an alias pipe into `newsletter bounces receive` (the README's aliases line);
 * - into a Maildir, imported by `newsletter bounces import` (the README's cron line).
 *
 * Either way exactly the refused addresses end up suppressed, nobody else, and every other
 * recipient's delivery stays `sent`. Nothing here is a hand-made report: the bytes are Postfix's.
 */
import { chmodSync, chownSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CLI } from '../helpers/cli-process.js';
import { eventually } from '../helpers/mail-server-process.js';
import { describePostfix, letDeliveryUserReach, type Postfix, startPostfix } from '../helpers/postfix.js';
import { holdSqliteWriteLock, type SqliteWriteLock } from '../helpers/sqlite-write-lock.js';
import { type SmtpSink, startSmtpSink } from '../helpers/smtp-sink.js';
import { perTest, sendUntilSent, type Workspace } from '../helpers/workspace.js';

/** Refused by the final SMTP server, as a mailbox provider refuses an unknown user. */
const REFUSED = ['reader0002@example.net', 'reader0004@example.net'];

let postfix: Postfix;
let maildir: string;
/** The alias pipe's command reads this env file; the test fills it in per workspace. */
let pipeEnvFile: string;
let sink: SmtpSink;
/** Folder modes opened for the delivery user, put back at the end. */
const restoreModes: (() => void)[] = [];
const fixtures = perTest();

describePostfix('Postfix bounces our own mail back to us (VERP, real DSNs)', () => {
  beforeAll(async () => {
    sink = await startSmtpSink({
      faults: REFUSED.map((to) => ({
        to,
        fault: {
          kind: 'rejectRcpt' as const,
          code: 550,
          text: `5.1.1 <${to}>: Recipient address rejected: User unknown`,
        },
      })),
    });
    // The pipe runs as Postfix's unprivileged delivery user, so its env file lives where that
    // user can read it: the instance's own folder, created before Postfix starts.
    const envDir = mkdtempSync(path.join(tmpdir(), 'newsletter-pipe-env-'));
    chmodSync(envDir, 0o755);
    pipeEnvFile = path.join(envDir, 'site.env');
    writeFileSync(pipeEnvFile, '', { mode: 0o644 });
    // The pipe runs as Postfix's delivery user: it must reach the CLI, the env file and the
    // temp folder (the workspaces and Maildirs are in it), wherever this checkout lives.
    restoreModes.push(letDeliveryUserReach(CLI), letDeliveryUserReach(pipeEnvFile));
    postfix = await startPostfix({
      localDomains: ['example.org'],
      relayPort: sink.port,
      aliases: {
        bounces: `|${process.execPath} ${CLI} --env-file ${pipeEnvFile} bounces receive`,
        'maildir-bounces': { maildir: 'bounce-maildir' },
      },
    });
    maildir = postfix.maildir('bounce-maildir');
  });

  afterAll(async () => {
    await postfix?.stop();
    await sink?.close();
    // It holds the workspace's secret.
    if (pipeEnvFile) rmSync(path.dirname(pipeEnvFile), { recursive: true, force: true });
    for (const restore of restoreModes.splice(0).reverse()) restore();
  });

  /** A workspace sending through Postfix, with its files handed to the delivery user. */
  async function workspaceThroughPostfix(
    returnPath: string,
    env: Record<string, string> = {},
  ): Promise<Workspace> {
    const ws = await fixtures.workspace({
      recipients: 5,
      transport: `smtp://127.0.0.1:${postfix.port}`,
      env: { NEWSLETTER_RETURN_PATH: returnPath, NEWSLETTER_SMTP_TLS: 'none', ...env },
    });
    const user = postfix.deliveryUser;
    for (const name of ['', ...readdirSync(ws.dir)]) {
      const file = path.join(ws.dir, name);
      if (statSync(file).isFile() || name === '') chownSync(file, user.uid, user.gid);
    }
    return ws;
  }

  /** The env file the alias pipe reads: this workspace's settings. */
  function pipeInto(ws: Workspace): void {
    writeFileSync(
      pipeEnvFile,
      Object.entries(ws.env)
        .filter(([key]) => key.startsWith('NEWSLETTER_'))
        .map(([key, value]) => `${key}=${value}`)
        .join('\n'),
      { mode: 0o644 },
    );
  }

  /** Local deliveries in Postfix's log so far with this status (sent, deferred). */
  const localDeliveries = (status: string): number =>
    (postfix.maillog().match(new RegExp(`relay=local, .*status=${status} `, 'g')) ?? []).length;

  /** Waits until Postfix has delivered `count` DSNs locally and its queue is empty. */
  async function dsnsDelivered(count: number): Promise<void> {
    await eventually(
      async () => {
        const local =
          postfix.maillog().match(/ to=<[^>]*@example\.org>, .*relay=local, .*status=sent/g) ?? [];
        return local.length >= count && (await postfix.queued()).length === 0 ? true : undefined;
      },
      { timeoutMs: 30_000, what: `${count} DSNs delivered by Postfix`, diagnose: () => postfix.maillog() },
    );
  }

  async function suppressed(ws: Workspace): Promise<string[]> {
    const rows = JSON.parse((await ws.ok(['suppress', 'list', '--json'])).stdout) as { address: string }[];
    return rows.map((row) => row.address).sort();
  }

  it('through an alias pipe into `bounces receive`: exactly the refused addresses are suppressed', async () => {
    const ws = await workspaceThroughPostfix('bounces@example.org');
    pipeInto(ws);
    const before = sink.messages.length;
    const envelopesBefore = sink.envelopeCommands.length;
    await sendUntilSent(ws);
    // Postfix took every message: the refusals come later, from the next hop.
    expect((await ws.show()).counts).toMatchObject({ sent: 5, failed: 0 });
    const envelopes = sink.envelopeCommands
      .slice(envelopesBefore)
      .filter((line) => /^MAIL FROM:/i.test(line));
    expect(envelopes.length).toBeGreaterThan(0);
    expect(envelopes.every((line) => /<bounces\+[a-z2-7]+@example\.org>/i.test(line))).toBe(true);
    expect(sink.messages.length - before).toBe(3);

    await dsnsDelivered(2);
    expect(postfix.maillog()).toMatch(/relay=local, .*status=sent \(delivered to command: /);
    expect(await suppressed(ws)).toEqual(REFUSED);
    for (const row of ws.ledger()) expect(row.state).toBe('sent');
  });

  it('into a Maildir, then `bounces import`: the same, and importing again changes nothing', async () => {
    const ws = await workspaceThroughPostfix('maildir-bounces@example.org');
    const logged = (postfix.maillog().match(/relay=local, .*status=sent/g) ?? []).length;
    await sendUntilSent(ws);
    await dsnsDelivered(logged + 2);
    const files = readdirSync(path.join(maildir, 'new'));
    expect(files).toHaveLength(2);

    const first = await ws.run(['bounces', 'import', maildir, '--json']);
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ messages: 2, hard: 2, unmatched: 0 });
    expect(await suppressed(ws)).toEqual(REFUSED);

    const again = await ws.run(['bounces', 'import', maildir, '--json']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ messages: 2, hard: 0, soft: 0, alreadyCounted: 2 });
    expect(await suppressed(ws)).toEqual(REFUSED);
  });
  it('the database busy when a DSN arrives: receive exits 75, Postfix keeps the DSN and delivers it again', async () => {
    // A short busy timeout, so that the pipe gives up (75) while the test holds the write lock.
    const ws = await workspaceThroughPostfix('bounces@example.org', { NEWSLETTER_BUSY_TIMEOUT: '200ms' });
    pipeInto(ws);
    const sentBefore = localDeliveries('sent');
    const deferredBefore = localDeliveries('deferred');
    // Postfix holds local deliveries back until the lock is in place.
    await postfix.configure({ defer_transports: 'local' });
    let lock: SqliteWriteLock | null = null;
    try {
      await sendUntilSent(ws);
      await eventually(
        async () => {
          const queued = await postfix.queued();
          const dsns = queued.filter((m) => m.recipients.every((r) => /^bounces\+/.test(r.address)));
          return queued.length === 2 && dsns.length === 2 ? true : undefined;
        },
        { timeoutMs: 30_000, what: 'two DSNs held in the queue', diagnose: () => postfix.maillog() },
      );
      lock = await holdSqliteWriteLock(ws.dbPath);
      await postfix.configure({ defer_transports: '' });
      await postfix.flush();
      await eventually(() => (localDeliveries('deferred') >= deferredBefore + 2 ? true : undefined), {
        timeoutMs: 30_000,
        what: 'both pipe deliveries deferred',
        diagnose: () => postfix.maillog(),
      });
      // The pipe said "try again later" (EX_TEMPFAIL); nothing was decided, nothing is lost.
      expect(postfix.maillog()).toMatch(/relay=local, .*status=deferred \(temporary failure/);
      expect(ws.query<{ address: string }>('SELECT address FROM suppressions')).toEqual([]);
      expect((await postfix.queued()).length).toBe(2);
    } finally {
      await lock?.release();
      await postfix.configure({ defer_transports: '' });
    }
    await postfix.flush();
    await dsnsDelivered(sentBefore + 2);
    expect(await suppressed(ws)).toEqual(REFUSED);
  });
});
