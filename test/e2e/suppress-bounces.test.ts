/**
 * `newsletter suppress …` and `newsletter bounces import` through the built CLI, on a real SQLite
 * file, with DSNs made in the test as Postfix writes them, in an mbox, a Maildir and .eml files.
 * The next send-due records suppressed recipients as `skipped`, with the reason.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { IncomingSummary as ImportSummary } from '../../src/bounces/summary.js';
import { assertBuilt, describeRun, makeWorkspace, type Workspace } from '../helpers/cli.js';
import { autoReply, mbox, postfixDsn } from '../helpers/dsn.js';
import { readOutbox } from '../helpers/outbox.js';

const cleanups: Array<() => Promise<void>> = [];

beforeAll(() => {
  assertBuilt();
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Listed {
  address: string;
  source: string;
  reason: string;
}

async function workspace(
  count: number,
): Promise<{ ws: Workspace; readers: string[]; create: () => Promise<number> }> {
  const ws = await makeWorkspace('newsletter-bounces-');
  cleanups.push(() => ws.cleanup());
  await ws.ok(['init']);
  const { file, addresses } = await ws.writeCsv(count);
  await ws.ok(['recipients', 'import', file, '--list', 'readers']);
  const create = () => ws.createDue('News');
  return { ws, readers: addresses, create };
}

function table(ws: Workspace, sql: string, ...values: unknown[]): unknown[] {
  const db = new Database(ws.db, { readonly: true });
  try {
    return db.prepare(sql).all(...values);
  } finally {
    db.close();
  }
}

const transport = { NEWSLETTER_TRANSPORT: 'file:./outbox' };

describe('bounces import', () => {
  it('mbox, Maildir and .eml: authenticated hard bounces suppress, soft ones count per delivery; importing again changes nothing', async () => {
    const { ws, readers, create } = await workspace(6);
    const [r1, r2, r3, r4, r5, r6] = readers as [string, string, string, string, string, string];
    // A newsletter goes out first: reports count only about mail we sent (issue 18). Postfix
    // mails each DSN to the bounced message's envelope sender, its VERP return path.
    const first = await create();
    await ws.ok(['send-due'], { env: { NEWSLETTER_TRANSPORT: 'file:./outbox1' } });
    const out = readOutbox(ws.path('outbox1'));
    const vrp = (address: string) => out.get(address)?.returnPath ?? `no message to ${address}`;

    // An mbox with two DSNs and a reply that is not one. The first names r2 as well: it acts
    // on r1 alone, the delivery it was addressed to.
    await ws.write(
      'bounces.mbox',
      mbox([
        postfixDsn({
          messageId: '<dsn-a@mx.example.net>',
          to: vrp(r1),
          recipients: [
            { address: r1, action: 'failed', status: '5.1.1', diagnostic: `550 5.1.1 <${r1}>: User unknown` },
            { address: r2, action: 'failed', status: '4.2.2', diagnostic: '452 4.2.2 Mailbox full' },
          ],
        }),
        autoReply(),
        postfixDsn({
          messageId: '<dsn-b@mx.example.net>',
          to: vrp(r2),
          recipients: [
            { address: r2.toUpperCase(), action: 'delayed', status: '4.2.2', diagnostic: 'mailbox full' },
          ],
        }),
      ]),
    );
    // A Maildir: one DSN unread (new/), one read (cur/). The first is about r2's delivery again:
    // soft bounces count per delivery, not per report.
    const maildir = ws.path('Maildir');
    for (const sub of ['cur', 'new', 'tmp']) await mkdir(path.join(maildir, sub), { recursive: true });
    await writeFile(
      path.join(maildir, 'new', '1764214800.M1P1.mx'),
      postfixDsn({
        messageId: '<dsn-c@mx.example.net>',
        to: vrp(r2),
        recipients: [{ address: r2, action: 'failed', status: '4.2.2', diagnostic: '452 4.2.2 Over quota' }],
      }),
    );
    await writeFile(
      path.join(maildir, 'cur', '1764214700.M1P1.mx:2,S'),
      postfixDsn({
        messageId: '<dsn-d@mx.example.net>',
        to: vrp(r3),
        recipients: [
          { address: r3, action: 'failed', status: '5.2.1', diagnostic: '550 5.2.1 Mailbox disabled' },
        ],
      }),
    );
    // An .eml without a Message-ID: a relayed recipient (not a bounce) and r5's soft bounce.
    await ws.write(
      'late.eml',
      postfixDsn({
        messageId: null,
        to: vrp(r5),
        recipients: [
          { address: r4, action: 'relayed', status: '2.0.0' },
          { address: r5, action: 'failed', status: '4.4.7', diagnostic: 'delivery time expired' },
        ],
      }),
    );
    const paths = ['bounces.mbox', 'Maildir', 'late.eml'];

    const firstImport = await ws.json<ImportSummary>(['bounces', 'import', ...paths, '--json']);
    expect(firstImport).toMatchObject({
      messages: 6,
      hard: 2,
      soft: 2,
      alreadyCounted: 1,
      notReports: 1,
      unmatched: 0,
      suppressed: [r1, r3],
      problems: [],
    });
    const suppressions = await ws.json<Listed[]>(['suppress', 'list', '--json']);
    expect(suppressions).toEqual([
      expect.objectContaining({
        address: r1,
        source: 'bounce',
        reason: `hard bounce 5.1.1: 550 5.1.1 <${r1}>: User unknown`,
      }),
      expect.objectContaining({
        address: r3,
        source: 'bounce',
        reason: 'hard bounce 5.2.1: 550 5.2.1 Mailbox disabled',
      }),
    ]);
    const events = table(ws, 'SELECT dsn_id, address, kind, status FROM bounce_events ORDER BY id');
    expect(events).toHaveLength(4);

    // The same mailboxes again (a cron line imports a growing mbox): nothing changes.
    const before = {
      suppressions: table(ws, 'SELECT * FROM suppressions ORDER BY address'),
      events: table(ws, 'SELECT * FROM bounce_events ORDER BY id'),
    };
    const again = await ws.json<ImportSummary>(['bounces', 'import', ...paths, '--json']);
    expect(again).toMatchObject({ hard: 0, soft: 0, alreadyCounted: 5, notReports: 1, suppressed: [] });
    expect({
      suppressions: table(ws, 'SELECT * FROM suppressions ORDER BY address'),
      events: table(ws, 'SELECT * FROM bounce_events ORDER BY id'),
    }).toEqual(before);
    // Quiet under cron when nothing is new.
    const quiet = await ws.run(['bounces', 'import', ...paths]);
    expect(quiet, describeRun(['bounces', 'import'], quiet)).toMatchObject({
      code: 0,
      stdout: '',
      stderr: '',
    });

    // The next newsletter skips the two, with the reason.
    const id = await create();
    const run = await ws.run(['send-due'], { env: { NEWSLETTER_TRANSPORT: 'file:./outbox2' } });
    expect(run, describeRun(['send-due'], run)).toMatchObject({ code: 0 });
    expect(
      table(
        ws,
        "SELECT address, reason FROM deliveries WHERE newsletter_id = ? AND state = 'skipped' ORDER BY address",
        id,
      ),
    ).toEqual([
      { address: r1, reason: expect.stringMatching(/^suppressed: hard bounce 5\.1\.1/) },
      { address: r3, reason: expect.stringMatching(/^suppressed: hard bounce 5\.2\.1/) },
    ]);

    // A soft bounce of r2's second delivery counts (2 of 3): still not suppressed.
    const second = readOutbox(ws.path('outbox2'));
    await ws.write(
      'second.eml',
      postfixDsn({
        messageId: '<dsn-e@mx.example.net>',
        to: second.get(r2)?.returnPath ?? 'none',
        recipients: [{ address: r2, action: 'delayed', status: '4.2.2' }],
      }),
    );
    expect(await ws.json<ImportSummary>(['bounces', 'import', 'second.eml', '--json'])).toMatchObject({
      soft: 1,
      suppressed: [],
    });

    // NEWSLETTER_SOFT_BOUNCE_LIMIT: one soft bounce is enough when set to 1.
    await ws.write(
      'r6.eml',
      postfixDsn({
        messageId: '<dsn-f@mx>',
        to: vrp(r6),
        recipients: [{ address: r6, action: 'delayed', status: '4.4.1' }],
      }),
    );
    expect(
      await ws.json<ImportSummary>(['bounces', 'import', 'r6.eml', '--json'], {
        env: { NEWSLETTER_SOFT_BOUNCE_LIMIT: '1' },
      }),
    ).toMatchObject({ soft: 1, suppressed: [r6] });
    expect(first).toBeLessThan(id);
    const bad = await ws.run(['bounces', 'import', 'nowhere.mbox']);
    expect(bad.code).toBe(4);
    expect(bad.stderr).toContain('nowhere.mbox does not exist');
  });
});

describe('suppress add|remove|list|import', () => {
  it('keeps one list, whatever fed it; send-due skips every address on it', async () => {
    const { ws, readers, create } = await workspace(5);
    const [r1, r2, r3, r4] = readers as [string, string, string, string];

    const added = await ws.run([
      'suppress',
      'add',
      r1.toUpperCase(),
      `Someone <${r2}>`,
      '--reason',
      'asked by phone',
    ]);
    expect(added, describeRun(['suppress', 'add'], added)).toMatchObject({ code: 0 });
    expect(added.stdout).toContain('Suppressed 2 addresses');
    expect((await ws.run(['suppress', 'add', 'not an address'])).code).toBe(4);

    await ws.write(
      'do-not-mail.txt',
      ['# exported from the old system', r3, '', `  ${r1}  `, 'bücher@bücher.de'].join('\n'),
    );
    expect(await ws.json(['suppress', 'import', 'do-not-mail.txt', '--json'])).toMatchObject({
      read: 3,
      added: 2,
      alreadySuppressed: 1,
    });
    await ws.write('with-reasons.csv', `email,reason\n${r4},"complained, twice"\nbroken-line\n`);
    const refused = await ws.run(['suppress', 'import', 'with-reasons.csv']);
    expect(refused.code).toBe(4);
    expect(refused.stderr).toContain('line 3');
    expect(table(ws, 'SELECT address FROM suppressions WHERE address = ?', r4)).toEqual([]);
    await ws.ok(['suppress', 'import', 'with-reasons.csv', '--skip-invalid']);

    const listed = await ws.json<Listed[]>(['suppress', 'list', '--json']);
    expect(listed.map((row) => [row.address, row.source, row.reason])).toEqual([
      ['bücher@xn--bcher-kva.de', 'import', 'imported from a suppression list'],
      [r1, 'operator', 'asked by phone'],
      [r2, 'operator', 'asked by phone'],
      [r3, 'import', 'imported from a suppression list'],
      [r4, 'import', 'complained, twice'],
    ]);
    const page = await ws.json<Listed[]>(['suppress', 'list', '--json', '--limit', '2', '--after', r1]);
    expect(page.map((row) => row.address)).toEqual([r2, r3]);

    const removed = await ws.run(['suppress', 'remove', r2, 'never@example.org']);
    expect(removed.code).toBe(0);
    expect(removed.stdout).toContain(`${r2} is no longer suppressed`);
    expect(removed.stderr).toContain('never@example.org was not suppressed');

    const id = await create();
    await ws.ok(['send-due'], { env: transport });
    const shown = await ws.json<{ counts: { sent: number; skipped: number } }>([
      'show',
      String(id),
      '--json',
    ]);
    expect(shown.counts).toMatchObject({ sent: 2, skipped: 3 });
  });
});
