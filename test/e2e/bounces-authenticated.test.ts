/**
 * Issue 18 through the built CLI, on a real SQLite file: a newsletter goes out through the file
 * transport (which records each message's envelope sender as Return-Path), then reports about it
 * come back through `bounces receive` (stdin) and `bounces import` (an mbox, .eml files). Only
 * reports that authenticate for one of our deliveries change anything, and only that delivery's
 * address; forgeries change nothing at all (the tables are compared byte for byte).
 */
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { IncomingSummary as Summary } from '../../src/bounces/summary.js';
import { assertBuilt, describeRun, makeWorkspace, type Workspace } from '../helpers/cli.js';
import { mbox, postfixDsn, rfc5965Sample } from '../helpers/dsn.js';
import { holdSqliteWriteLock } from '../helpers/sqlite-write-lock.js';
import { type OutboxMessage, readOutbox } from '../helpers/outbox.js';

const cleanups: Array<() => Promise<void>> = [];

beforeAll(() => {
  assertBuilt();
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const FILE = { NEWSLETTER_TRANSPORT: 'file:./outbox' };

/** A workspace with `count` readers and one newsletter sent to them; its outbox by recipient. */
async function sentWorkspace(
  count: number,
  env: Record<string, string> = {},
): Promise<{ ws: Workspace; readers: string[]; id: number; out: Map<string, OutboxMessage> }> {
  const ws = await makeWorkspace('newsletter-auth-');
  cleanups.push(() => ws.cleanup());
  Object.assign(ws.env, FILE, env);
  await ws.ok(['init']);
  const { file, addresses } = await ws.writeCsv(count);
  await ws.ok(['recipients', 'import', file, '--list', 'readers']);
  const id = await ws.createDue('News');
  await ws.ok(['send-due']);
  return { ws, readers: addresses, id, out: readOutbox(ws.path('outbox')) };
}

function rows(ws: Workspace, sql: string, ...values: unknown[]): unknown[] {
  const db = new Database(ws.db, { readonly: true });
  try {
    return db.prepare(sql).all(...values);
  } finally {
    db.close();
  }
}

/** Everything a report could change. */
function snapshot(ws: Workspace) {
  return {
    suppressions: rows(ws, 'SELECT * FROM suppressions ORDER BY address'),
    events: rows(ws, 'SELECT * FROM bounce_events ORDER BY id'),
    subscribers: rows(ws, 'SELECT id, address, status, unsubscribed_at FROM subscribers ORDER BY id'),
  };
}

function of(out: Map<string, OutboxMessage>, address: string): OutboxMessage {
  const message = out.get(address);
  if (!message) throw new Error(`nothing was sent to ${address}`);
  return message;
}

async function receive(ws: Workspace, message: string, args: string[] = []): Promise<Summary> {
  const argv = ['bounces', 'receive', '--json', ...args];
  const result = await ws.run(argv, { input: message });
  expect(result, describeRun(argv, result)).toMatchObject({ code: 0 });
  return JSON.parse(result.stdout) as Summary;
}

describe('the VERP return path', () => {
  it("is each message's envelope sender: From local part + token, lower-case base32; no mailto without NEWSLETTER_RETURN_PATH", async () => {
    const { readers, out } = await sentWorkspace(3);
    const tokens = new Set<string>();
    for (const reader of readers) {
      const message = of(out, reader);
      expect(message.returnPath).toMatch(/^news\+b[a-z2-7]{26}@example\.org$/);
      tokens.add(message.returnPath as string);
      // Only the HTTPS link: nothing reads the From mailbox for us, so no mailto is advertised.
      expect(message.listUnsubscribe).toMatch(/^<https:\/\/news\.example\.org\/u\/[^>]+>$/);
      // Keyed Message-IDs: not the old unkeyed hash anybody could compute.
      expect(message.messageId).toMatch(/^<n\d+\.[0-9a-f]{32}@example\.org>$/);
      expect(message.messageId).not.toContain(unkeyedHash(1, reader));
    }
    expect(tokens.size).toBe(3);
  });

  it('NEWSLETTER_RETURN_PATH with the - delimiter: bounces-b…@ as envelope sender, bounces-u…@ as the List-Unsubscribe mailto', async () => {
    const { readers, out } = await sentWorkspace(1, {
      NEWSLETTER_RETURN_PATH: 'bounces@example.org',
      NEWSLETTER_RETURN_PATH_DELIMITER: '-',
    });
    const message = of(out, readers[0] as string);
    expect(message.returnPath).toMatch(/^bounces-b[a-z2-7]{26}@example\.org$/);
    expect(message.listUnsubscribe).toMatch(
      /^<https:\/\/news\.example\.org\/u\/[^>]+>, <mailto:bounces-u[a-z2-7]{26}@example\.org\?subject=unsubscribe>$/,
    );
  });

  it('refuses a return path that cannot carry a token, naming the variable (exit 3)', async () => {
    const ws = await makeWorkspace('newsletter-auth-');
    cleanups.push(() => ws.cleanup());
    const bad = await ws.run(['status'], {
      env: { NEWSLETTER_RETURN_PATH: 'Bounces <b+x@example.org>', NEWSLETTER_RETURN_PATH_DELIMITER: '%' },
    });
    expect(bad.code).toBe(3);
    expect(bad.stderr).toContain('NEWSLETTER_RETURN_PATH_DELIMITER "%" must be +');
    expect(bad.stderr).toContain('NEWSLETTER_RETURN_PATH "Bounces <b+x@example.org>" must be a bare address');
  });
});

describe('bounces receive and import: only authenticated reports count', () => {
  it('acts on the one delivery a report authenticates for, once; forgeries change nothing', async () => {
    const { ws, readers, id, out } = await sentWorkspace(6);
    const [r1, r2, r3, r4, r5, r6] = readers as [string, string, string, string, string, string];

    // r3's delivery as mail sent before Message-IDs were keyed carries it: the unkeyed hash, which
    // anybody can compute for a guessed address. It must prove nothing.
    const legacy = `<n${id}.${unkeyedHash(id, r3)}@example.org>`;
    const db = new Database(ws.db);
    db.prepare('UPDATE deliveries SET message_id = ? WHERE address = ? AND newsletter_id = ?').run(
      legacy,
      r3,
      id,
    );
    db.close();
    // Forgeries first, on the untouched database: nothing may change.
    const before = snapshot(ws);
    const many = (count: number) =>
      Array.from({ length: count }, (_, i) => ({
        address: i === 0 ? r3 : i === 1 ? r4 : `victim${i}@example.com`,
        action: 'delayed',
        status: '4.4.7',
      }));
    const forgeries = [
      // No reference to our mail at all.
      postfixDsn({ messageId: '<f1@mx>', recipients: [{ address: r3, action: 'failed', status: '5.1.1' }] }),
      // The real Message-ID of r4's message, about r3.
      postfixDsn({
        messageId: '<f2@mx>',
        originalMessageId: of(out, r4).messageId,
        recipients: [{ address: r3, action: 'failed', status: '5.1.1' }],
      }),
      // A guessed Message-ID: the unkeyed hash of old, which r3's ledger row holds.
      postfixDsn({
        messageId: '<f3@mx>',
        originalMessageId: legacy,
        recipients: [{ address: r3, action: 'failed', status: '5.1.1' }],
      }),
      // A token of the right shape that our secret never made (r3's, one letter changed).
      postfixDsn({
        messageId: '<f4@mx>',
        to: tamper(of(out, r3).returnPath as string),
        recipients: [{ address: r3, action: 'failed', status: '5.1.1' }],
      }),
      // 20,000 recipients, failed; and three "delayed" reports of 20,000 each.
      postfixDsn({
        messageId: '<f5@mx>',
        recipients: many(20_000).map((r) => ({ ...r, action: 'failed', status: '5.1.1' })),
      }),
      ...[6, 7, 8].map((n) =>
        postfixDsn({
          messageId: `<f${n}@mx>`,
          originalMessageId: `<guess-${n}@example.org>`,
          recipients: many(20_000),
        }),
      ),
      // RFC 5965's sample, unchanged: about somebody else's mail.
      rfc5965Sample(),
    ];
    await ws.write('forged.mbox', mbox(forgeries));
    const forged = await ws.json<Summary>(['bounces', 'import', 'forged.mbox', '--json'], {
      env: { NEWSLETTER_SOFT_BOUNCE_LIMIT: '1' },
      timeoutMs: 60_000,
    });
    expect(forged).toMatchObject({
      messages: forgeries.length,
      hard: 0,
      soft: 0,
      complaints: 0,
      unsubscribes: 0,
      unmatched: forgeries.length,
      suppressed: [],
    });
    expect(forged.unmatchedReasons[0]).toContain('names no delivery of ours');
    expect(snapshot(ws)).toEqual(before);

    // Addressed to r1's token (Postfix mails the bounce to the envelope sender): a hard bounce.
    const hard = postfixDsn({
      messageId: '<dsn-1@mx.example.net>',
      to: of(out, r1).returnPath as string,
      recipients: [
        { address: r1, action: 'failed', status: '5.1.1', diagnostic: `550 5.1.1 <${r1}>: User unknown` },
      ],
    });
    expect(await receive(ws, hard)).toMatchObject({ hard: 1, suppressed: [r1], unmatched: 0 });
    // The same report again, and another about the same delivery: counted once.
    expect(await receive(ws, hard)).toMatchObject({ hard: 0, alreadyCounted: 1, suppressed: [] });

    // The token lost, but the returned headers carry r2's Message-ID and the report names r2.
    await ws.write(
      'by-id.eml',
      postfixDsn({
        messageId: '<dsn-2@mx.example.net>',
        originalMessageId: of(out, r2).messageId,
        recipients: [
          { address: r2.toUpperCase(), action: 'failed', status: '5.2.1', diagnostic: 'disabled' },
        ],
      }),
    );
    expect(await ws.json<Summary>(['bounces', 'import', 'by-id.eml', '--json'])).toMatchObject({
      hard: 1,
      suppressed: [r2],
    });

    // Three "delayed" reports about r3's one delivery: one soft bounce, however many reports.
    for (const n of [1, 2, 3]) {
      const summary = await receive(
        ws,
        postfixDsn({
          messageId: `<delay-${n}@mx>`,
          recipients: [{ address: r3, action: 'delayed', status: '4.2.2' }],
        }),
        ['--recipient', of(out, r3).returnPath as string],
      );
      expect(summary).toMatchObject(n === 1 ? { soft: 1, suppressed: [] } : { soft: 0, alreadyCounted: 1 });
    }

    // 20,000 recipients, addressed to r4's token (X-Original-To, as Postfix's local delivery adds
    // it): it acts on r4 alone.
    const wide = postfixDsn({
      messageId: '<wide@mx>',
      extraHeaders: [`X-Original-To: ${of(out, r4).returnPath}`],
      recipients: many(20_000).map((r, i) => ({
        ...r,
        address: i === 1 ? r4 : r.address === r4 ? r5 : r.address,
        action: 'failed',
        status: '5.1.1',
      })),
    });
    expect(await receive(ws, wide)).toMatchObject({ hard: 1, suppressed: [r4] });

    // RFC 5965's sample adapted to r5's delivery (its Message-ID and recipient): a complaint.
    const complaint = rfc5965Sample({ originalRcptTo: r5, messageId: of(out, r5).messageId });
    expect(await receive(ws, complaint)).toMatchObject({ complaints: 1, suppressed: [r5] });
    expect(await receive(ws, complaint)).toMatchObject({ complaints: 0, alreadyCounted: 1 });

    // A diagnostic full of terminal control sequences, for r6: stored and shown escaped.
    const nasty = postfixDsn({
      messageId: '<nasty\u001b]0;pwned\u0007@mx>',
      to: of(out, r6).returnPath as string,
      recipients: [
        {
          address: r6,
          action: 'failed',
          status: '5.1.1',
          diagnostic: '550 \u001b[31mred\u001b[0m \u0007bell',
        },
      ],
    });
    expect(await receive(ws, nasty)).toMatchObject({ hard: 1, suppressed: [r6] });

    // Exactly these were suppressed, with their sources and the reports' Message-IDs.
    const listed = await ws.json<
      { address: string; source: string; reportId: string | null; reason: string }[]
    >(['suppress', 'list', '--json']);
    expect(listed.map((row) => [row.address, row.source, row.reportId])).toEqual([
      [r1, 'bounce', '<dsn-1@mx.example.net>'],
      [r2, 'bounce', '<dsn-2@mx.example.net>'],
      [r4, 'bounce', '<wide@mx>'],
      [r5, 'complaint', expect.stringMatching(/^sha256:[0-9a-f]{64}$/)],
      [r6, 'bounce', '<nasty\u001b]0;pwned\u0007@mx>'],
    ]);
    const text = await ws.ok(['suppress', 'list']);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: no control character may reach the terminal
    expect(text.stdout).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f]/);
    expect(text.stdout).toContain('\\x1b[31mred\\x1b[0m \\x07bell');
    expect(text.stdout).toContain('<nasty\\x1b]0;pwned\\x07@mx>');
    expect(text.stdout).toContain('complaint (abuse) reported by SomeGenerator/1.0');
    expect(
      rows(
        ws,
        'SELECT address, kind, delivery_id IS NOT NULL AS named, newsletter_id FROM bounce_events ORDER BY id',
      ),
    ).toEqual([
      { address: r1, kind: 'hard', named: 1, newsletter_id: id },
      { address: r2, kind: 'hard', named: 1, newsletter_id: id },
      { address: r3, kind: 'soft', named: 1, newsletter_id: id },
      { address: r4, kind: 'hard', named: 1, newsletter_id: id },
      { address: r5, kind: 'complaint', named: 1, newsletter_id: id },
      { address: r6, kind: 'hard', named: 1, newsletter_id: id },
    ]);

    // show and status count them per newsletter.
    const shown = await ws.json<{ bounced: number; complained: number }>(['show', String(id), '--json']);
    expect(shown).toMatchObject({ bounced: 5, complained: 1 });
    expect((await ws.ok(['show', String(id)])).stdout).toContain('5 bounced (4 hard, 1 soft), 1 complained');
    const status = await ws.json<{ recent: { id: number; bounced: number; complained: number }[] }>([
      'status',
      '--json',
    ]);
    expect(status.recent.find((n) => n.id === id)).toMatchObject({ bounced: 5, complained: 1 });
    expect((await ws.ok(['status', String(id)])).code).toBe(0);

    // Quiet under cron once nothing is new; --verbose says why unmatched mail did not count.
    const quiet = await ws.run(['bounces', 'import', 'forged.mbox'], { timeoutMs: 60_000 });
    expect(quiet, describeRun(['bounces', 'import'], quiet)).toMatchObject({
      code: 0,
      stdout: '',
      stderr: '',
    });
  });

  it("mail to the List-Unsubscribe mailto unsubscribes that delivery's subscriber (source mailto), once; a forged one changes nothing", async () => {
    const { ws, readers, out } = await sentWorkspace(2, { NEWSLETTER_RETURN_PATH: 'bounces@example.org' });
    const [r1, r2] = readers as [string, string];
    const mailto = /<mailto:([^?>]+)\?subject=unsubscribe>/.exec(of(out, r1).listUnsubscribe)?.[1];
    expect(mailto).toMatch(/^bounces\+u[a-z2-7]{26}@example\.org$/);
    const request = (to: string) =>
      [
        `From: ${r1}`,
        `To: ${to}`,
        'Subject: unsubscribe',
        'Message-ID: <u1@mail.example.net>',
        '',
        'unsubscribe',
        '',
      ].join('\n');

    const before = snapshot(ws);
    // The bounce token of the same delivery is not an unsubscribe; nor is a made-up one.
    expect(await receive(ws, request(of(out, r1).returnPath as string))).toMatchObject({
      unsubscribes: 0,
      notReports: 1,
    });
    expect(await receive(ws, request(tamper(mailto as string)))).toMatchObject({
      unsubscribes: 0,
      notReports: 1,
    });
    expect(snapshot(ws)).toEqual(before);

    expect(await receive(ws, request(mailto as string))).toMatchObject({
      unsubscribes: 1,
      unsubscribed: [r1],
    });
    expect(await receive(ws, request(mailto as string))).toMatchObject({
      unsubscribes: 0,
      alreadyCounted: 1,
    });
    const after = snapshot(ws).subscribers as { address: string }[];
    expect(after.map((row) => row.address)).toEqual([r1, r2]);
    // r1 is out of what that newsletter went to (per-list or global, as the store's opt-out decides); r2 is not.
    const next = await ws.createDue('Next');
    await ws.ok(['send-due']);
    expect(
      rows(ws, "SELECT address FROM deliveries WHERE newsletter_id = ? AND state = 'sent'", next),
    ).toEqual([{ address: r2 }]);
  });
});

describe('bounces receive exit codes', () => {
  it('exits 75 (the MTA keeps the message) when the configuration is broken or the database cannot be used', async () => {
    const { ws, readers, out } = await sentWorkspace(1);
    const dsn = postfixDsn({
      to: of(out, readers[0] as string).returnPath as string,
      recipients: [{ address: readers[0] as string, action: 'failed', status: '5.1.1' }],
    });
    const before = snapshot(ws);
    const badConfig = await ws.run(['bounces', 'receive'], { input: dsn, env: { NEWSLETTER_RATE: 'fast' } });
    expect(badConfig, describeRun(['bounces', 'receive'], badConfig)).toMatchObject({ code: 75 });
    expect(badConfig.stderr).toContain('NEWSLETTER_RATE');
    const missing = await ws.run(['bounces', 'receive'], {
      input: dsn,
      env: { NEWSLETTER_DATABASE: ws.path('gone', 'newsletter.db') },
    });
    expect(missing, describeRun(['bounces', 'receive'], missing)).toMatchObject({ code: 75 });
    const usage = await ws.run(['bounces', 'receive', '--no-such-option'], { input: dsn });
    expect(usage.code).toBe(75);
    // Another writer holds the SQLite write lock longer than NEWSLETTER_BUSY_TIMEOUT.
    const lock = await holdSqliteWriteLock(ws.db);
    cleanups.push(() => lock.kill());
    const busy = await ws.run(['bounces', 'receive'], {
      input: dsn,
      env: { NEWSLETTER_BUSY_TIMEOUT: '200ms' },
    });
    expect(busy, describeRun(['bounces', 'receive'], busy)).toMatchObject({ code: 75 });
    await lock.release();
    expect(snapshot(ws)).toEqual(before);
    // And 0 once it can be handled.
    expect(await receive(ws, dsn)).toMatchObject({ hard: 1 });
  });
});

/** The Message-ID hash before issue 18: sha256 of (newsletter, address), no key. */
function unkeyedHash(newsletterId: number, address: string): string {
  return createHash('sha256').update(`${newsletterId}\n${address}`).digest('hex').slice(0, 32);
}

/** The same address with one letter of its token changed: the right shape, the wrong MAC. */
function tamper(address: string): string {
  const at = address.indexOf('@');
  const last = address[at - 1] === 'a' ? 'b' : 'a';
  return `${address.slice(0, at - 1)}${last}${address.slice(at)}`;
}
