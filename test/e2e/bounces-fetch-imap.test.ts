/**
 * `bounces fetch` against a real IMAP server (Dovecot on loopback, test/helpers/dovecot.ts):
 * the bounce mailbox of a hosted account, read from cron. The promises: a report about our own
 * mail counts once and moves to the done folder; anything else changes nothing and moves to the
 * unmatched folder; a second run changes nothing and prints nothing; a message handled but not
 * moved (a crash in between) is not counted twice; the credentials never reach the output; a
 * refused login, an untrusted certificate or a missing folder is configuration (3), a server out
 * of reach transient (9), and then nothing changes.
 */
import { readFileSync } from 'node:fs';
import { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { autoReply, postfixDsn } from '../helpers/dsn.js';
import { describeDovecot, type Dovecot, startDovecot } from '../helpers/dovecot.js';
import { freePort } from '../helpers/mail-server-process.js';
import { TEST_CA_PATH } from '../helpers/tls-fixture.js';
import { type SmtpSink, startSmtpSink } from '../helpers/smtp-sink.js';
import { holdSqliteWriteLock } from '../helpers/sqlite-write-lock.js';
import { createWorkspace, perTest, sendUntilSent, type Workspace } from '../helpers/workspace.js';

const USER = 'bounce-box@example.org';
// Characters that must be percent-encoded in a URL: the decoding is part of what is tested.
const PASSWORD = 'p@ss/w0rd#x?';
const ENCODED = `${encodeURIComponent(USER)}:${encodeURIComponent(PASSWORD)}`;

let dovecot: Dovecot;

describeDovecot('bounces fetch (IMAP, Dovecot on loopback)', () => {
  beforeAll(async () => {
    dovecot = await startDovecot({ users: [{ user: USER, password: PASSWORD }] });
  });
  afterAll(async () => {
    await dovecot?.stop();
  });

  const fixtures = perTest();

  async function imap<T>(work: (client: ImapFlow) => Promise<T>): Promise<T> {
    const client = new ImapFlow({
      host: '127.0.0.1',
      port: dovecot.tlsPort,
      secure: true,
      auth: { user: USER, pass: PASSWORD },
      logger: false,
      tls: { ca: [readFileSync(TEST_CA_PATH)] },
    });
    await client.connect();
    try {
      return await work(client);
    } finally {
      await client.logout();
    }
  }

  /** Message-IDs per folder (a missing folder: undefined). */
  async function folders(): Promise<Record<string, string[]>> {
    return imap(async (client) => {
      const out: Record<string, string[]> = {};
      for (const entry of await client.list()) {
        const lock = await client.getMailboxLock(entry.path);
        try {
          const ids: string[] = [];
          if ((client.mailbox ? client.mailbox.exists : 0) > 0) {
            for await (const m of client.fetch('1:*', { envelope: true }))
              ids.push(m.envelope?.messageId ?? '');
          }
          out[entry.path] = ids.sort();
        } finally {
          lock.release();
        }
      }
      return out;
    });
  }

  async function deliver(messages: string[]): Promise<void> {
    await imap(async (client) => {
      for (const message of messages)
        await client.append('INBOX', Buffer.from(message.replace(/\n/g, '\r\n')));
    });
  }

  async function emptyAll(): Promise<void> {
    await imap(async (client) => {
      for (const entry of await client.list()) {
        if (entry.path === 'INBOX') {
          const lock = await client.getMailboxLock('INBOX');
          try {
            if ((client.mailbox ? client.mailbox.exists : 0) > 0) await client.messageDelete('1:*');
          } finally {
            lock.release();
          }
        } else await client.mailboxDelete(entry.path);
      }
    });
  }

  const url = (scheme: string, port: number, credentials = ENCODED, folder = 'INBOX') =>
    `${scheme}://${credentials}@127.0.0.1:${port}/${folder}`;

  /** A newsletter sent to three readers through the sink, and what the sink saw for each. */
  async function sentNewsletter() {
    const sink = await fixtures.sink();
    const ws = await fixtures.workspace({ recipients: 3, transport: sink.url });
    await sendUntilSent(ws);
    const of = (address: string) => {
      const message = sink.messages.find((m) => m.to.includes(address));
      if (!message?.messageId) throw new Error(`the sink saw no message for ${address}`);
      return { returnPath: message.from, messageId: message.messageId };
    };
    return { ws, of };
  }

  /** A Postfix DSN as the bounce box receives it: addressed to the VERP return path. */
  function bounceFor(address: string, sent: { returnPath: string; messageId: string }, id: string): string {
    const dsn = postfixDsn({
      messageId: id,
      originalMessageId: sent.messageId,
      recipients: [
        { address, action: 'failed', status: '5.1.1', diagnostic: `550 5.1.1 <${address}>: user unknown` },
      ],
    });
    return `Delivered-To: ${sent.returnPath}\nX-Original-To: ${sent.returnPath}\n${dsn.replace('To: news@example.org', `To: ${sent.returnPath}`)}`;
  }

  async function suppressed(ws: { ok(args: string[]): Promise<{ stdout: string }> }): Promise<string[]> {
    const rows = JSON.parse((await ws.ok(['suppress', 'list', '--json'])).stdout) as { address: string }[];
    return rows.map((row) => row.address).sort();
  }

  it('handles our report, moves everything out, and a second run changes and prints nothing', async () => {
    await emptyAll();
    const { ws, of } = await sentNewsletter();
    const [gone, other] = [ws.addresses[0]!, ws.addresses[1]!];
    const forged = postfixDsn({
      messageId: '<forged-1@mx.example.net>',
      originalMessageId: '<guessed@example.org>',
      recipients: [{ address: other, action: 'failed', status: '5.1.1' }],
    });
    await deliver([
      bounceFor(gone, of(gone), '<dsn-1@mx.example.net>'),
      forged,
      autoReply('<ooo-1@example.net>'),
    ]);

    const env = { NEWSLETTER_IMAP: url('imap', dovecot.port) };
    const first = await ws.run(['bounces', 'fetch', '--json'], env);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const summary = JSON.parse(first.stdout);
    expect(summary).toMatchObject({ messages: 3, hard: 1, unmatched: 1, notReports: 1, suppressed: [gone] });
    expect(await suppressed(ws)).toEqual([gone]);
    expect(await folders()).toEqual({
      INBOX: [],
      'newsletter-processed': ['<dsn-1@mx.example.net>'],
      'newsletter-unmatched': ['<forged-1@mx.example.net>', '<ooo-1@example.net>'],
    });

    // From cron: no terminal, nothing new, nothing printed.
    const second = await ws.run(['bounces', 'fetch'], env);
    expect(second).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(await suppressed(ws)).toEqual([gone]);

    // Handled but never moved (a crash between the two): back in the folder, counted once.
    await deliver([bounceFor(gone, of(gone), '<dsn-1@mx.example.net>')]);
    const again = await ws.run(['bounces', 'fetch', '--json'], env);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({
      messages: 1,
      hard: 0,
      soft: 0,
      alreadyCounted: 1,
      suppressed: [],
    });
    expect((await folders())['newsletter-processed']).toEqual([
      '<dsn-1@mx.example.net>',
      '<dsn-1@mx.example.net>',
    ]);
    expect(await suppressed(ws)).toEqual([gone]);
  });

  it('two runs at once on one host: one reads the mailbox, the other exits 6; each report once', async () => {
    await emptyAll();
    const { ws, of } = await sentNewsletter();
    const reports = ws.addresses.map((address, i) =>
      bounceFor(address, of(address), `<dsn-c${i}@mx.example.net>`),
    );
    await deliver(reports);
    const env = { NEWSLETTER_IMAP: url('imap', dovecot.port) };
    const runs = await Promise.all([
      ws.start(['bounces', 'fetch', '--json'], env).exited,
      ws.start(['bounces', 'fetch', '--json'], env).exited,
    ]);
    // Either the second found the lock held (6, nothing done), or it started after the first had
    // finished and found an empty folder (0): never two runs reading at once.
    for (const run of runs) expect([0, 6], run.stderr).toContain(run.code);
    const finished = runs.filter((run) => run.code === 0);
    expect(finished.length).toBeGreaterThanOrEqual(1);
    for (const run of runs.filter((r) => r.code === 6)) {
      expect(run.stderr).toMatch(/Another `bounces fetch` is reading/);
    }
    const summaries = finished.map((run) => JSON.parse(run.stdout) as { hard: number });
    expect(summaries.reduce((sum, s) => sum + s.hard, 0)).toBe(3);
    expect(await suppressed(ws)).toEqual([...ws.addresses].sort());
    const after = await folders();
    expect(after.INBOX).toEqual([]);
    expect([...(after['newsletter-processed'] ?? [])].sort()).toEqual([
      '<dsn-c0@mx.example.net>',
      '<dsn-c1@mx.example.net>',
      '<dsn-c2@mx.example.net>',
    ]);
  });

  it('imaps:// with NEWSLETTER_IMAP_CA, and folders of its own choosing', async () => {
    await emptyAll();
    const { ws, of } = await sentNewsletter();
    const gone = ws.addresses[2]!;
    await deliver([bounceFor(gone, of(gone), '<dsn-2@mx.example.net>')]);
    const result = await ws.run(['bounces', 'fetch', '--json'], {
      NEWSLETTER_IMAP: url('imaps', dovecot.tlsPort),
      NEWSLETTER_IMAP_CA: TEST_CA_PATH,
      NEWSLETTER_IMAP_DONE_FOLDER: 'Done',
      NEWSLETTER_IMAP_UNMATCHED_FOLDER: 'Look at these',
    });
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ hard: 1, suppressed: [gone] });
    expect(await folders()).toMatchObject({ INBOX: [], Done: ['<dsn-2@mx.example.net>'] });
  });

  describe('failures change nothing, say what to do, and never show the credentials', () => {
    const cases: { name: string; env: () => Record<string, string>; code: number; says: RegExp }[] = [
      {
        name: 'a wrong password',
        env: () => ({
          NEWSLETTER_IMAP: url(
            'imap',
            dovecot.port,
            `${encodeURIComponent(USER)}:not-${encodeURIComponent(PASSWORD)}`,
          ),
        }),
        code: 3,
        says: /refused NEWSLETTER_IMAP's user and password/,
      },
      {
        name: 'a certificate the system does not trust',
        env: () => ({ NEWSLETTER_IMAP: url('imaps', dovecot.tlsPort) }),
        code: 3,
        says: /NEWSLETTER_IMAP_CA/,
      },
      {
        name: 'a folder that does not exist',
        env: () => ({ NEWSLETTER_IMAP: url('imap', dovecot.port, ENCODED, 'Nope') }),
        code: 3,
        says: /folder "Nope" does not exist/,
      },
      {
        name: 'a server out of reach',
        env: () => ({ NEWSLETTER_IMAP: url('imap', unusedPort) }),
        code: 9,
        says: /could not be reached/,
      },
      {
        name: 'an unset NEWSLETTER_IMAP',
        env: () => ({}),
        code: 3,
        says: /NEWSLETTER_IMAP is not set/,
      },
    ];
    let unusedPort = 0;
    // One newsletter and one real report for every case: each must leave both as they were.
    let ws: Workspace;
    let sink: SmtpSink;
    beforeAll(async () => {
      unusedPort = await freePort();
      sink = await startSmtpSink();
      ws = await createWorkspace({ recipients: 2, transport: sink.url });
      await sendUntilSent(ws);
      const sent = sink.messages.find((m) => m.to.includes(ws.addresses[0]!));
      if (!sent?.messageId) throw new Error('the sink saw no message');
      await emptyAll();
      await deliver([
        bounceFor(
          ws.addresses[0]!,
          { returnPath: sent.from, messageId: sent.messageId },
          '<dsn-3@mx.example.net>',
        ),
      ]);
    });
    afterAll(async () => {
      await ws?.remove();
      await sink?.close();
    });

    for (const c of cases) {
      it(c.name, async () => {
        const result = await ws.run(['bounces', 'fetch', '--verbose'], c.env());
        expect(result.code, result.stderr).toBe(c.code);
        expect(result.stderr).toMatch(c.says);
        for (const secret of [PASSWORD, encodeURIComponent(PASSWORD), USER, encodeURIComponent(USER)]) {
          expect(result.stdout + result.stderr).not.toContain(secret);
        }
        expect(await suppressed(ws)).toEqual([]);
        expect(await folders()).toEqual({ INBOX: ['<dsn-3@mx.example.net>'] });
      });
    }

    it('the database busy: a non-zero exit, and the report stays in the folder', async () => {
      const lock = await holdSqliteWriteLock(ws.dbPath);
      try {
        const result = await ws.run(['bounces', 'fetch'], {
          NEWSLETTER_IMAP: url('imap', dovecot.port),
          NEWSLETTER_BUSY_TIMEOUT: '200ms',
        });
        // The table's code for a busy database (5), or transient (9): never 0, and nothing moved.
        expect([5, 9], result.stderr).toContain(result.code);
        expect(result.stderr).toMatch(/busy|locked/i);
        expect(ws.query<{ address: string }>('SELECT address FROM suppressions')).toEqual([]);
      } finally {
        await lock.release();
      }
      expect(await folders()).toEqual({ INBOX: ['<dsn-3@mx.example.net>'] });
    });

    it('(and the report left in place is a real one: with the right settings it counts)', async () => {
      const result = await ws.run(['bounces', 'fetch', '--json'], {
        NEWSLETTER_IMAP: url('imap', dovecot.port),
      });
      expect(result.code, result.stderr).toBe(0);
      expect(await suppressed(ws)).toEqual([ws.addresses[0]]);
      expect((await folders()).INBOX).toEqual([]);
    });
  });
});
