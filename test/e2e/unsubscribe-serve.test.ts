/**
 * Unsubscribing through the built CLI: links taken from real sent messages (the file outbox),
 * `newsletter serve` as a child process answering real HTTP requests, `newsletter unsubscribe
 * TOKEN|URL`, a key rotation, and the next send-due recording those addresses as `skipped`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { simpleParser } from 'mailparser';
import { describe, expect, it } from 'vitest';
import { describeRun, type Workspace } from '../helpers/cli.js';
import { workspacesReapingChildren } from '../helpers/e2e-workspaces.js';
import { onServer, startServe, stopServe } from '../helpers/serve-process.js';

const workspace = workspacesReapingChildren('newsletter-serve-');

/** init, import `count` readers, create a newsletter due now; returns the id. */
async function prepare(
  ws: Workspace,
  count: number,
): Promise<{ addresses: string[]; create: () => Promise<number> }> {
  await ws.ok(['init']);
  const { file, addresses } = await ws.writeCsv(count);
  await ws.ok(['recipients', 'import', file, '--list', 'readers']);
  const create = () => ws.createDue();
  return { addresses, create };
}

/** Each recipient's https link, from the List-Unsubscribe header of the message newsletter `id` wrote. */
async function linksFromOutbox(outbox: string, id: number): Promise<Map<string, string>> {
  const links = new Map<string, string>();
  // Outbox files are named by Message-ID, `<n{id}.{hash}@domain>`.
  for (const name of readdirSync(outbox).filter((n) => n.startsWith(`n${id}.`) && n.endsWith('.eml'))) {
    const mail = await simpleParser(readFileSync(path.join(outbox, name)));
    const to = (Array.isArray(mail.to) ? mail.to[0] : mail.to)?.value[0]?.address ?? '';
    const header = mail.headerLines.find((h) => h.key === 'list-unsubscribe')?.line ?? '';
    const url = /<(https:[^>]+)>/.exec(header.replace(/\r?\n\s+/g, ' '))?.[1];
    if (url) links.set(to, url);
    // The same link is in the body, for people.
    expect(mail.html).toContain(url);
  }
  return links;
}

function skippedOf(ws: Workspace, id: number): { address: string; reason: string }[] {
  const db = new Database(ws.db, { readonly: true });
  try {
    return db
      .prepare(
        "SELECT address, reason FROM deliveries WHERE newsletter_id = ? AND state = 'skipped' ORDER BY address",
      )
      .all(id) as { address: string; reason: string }[];
  } finally {
    db.close();
  }
}

describe('unsubscribe links, end to end', () => {
  it('one-click POST to `serve`, the confirmation page, and `newsletter unsubscribe`; the next send to the list leaves them out', async () => {
    const ws = await workspace();
    const transport = { NEWSLETTER_TRANSPORT: 'file:./outbox' };
    const { addresses, create } = await prepare(ws, 5);
    const id = await create();
    await ws.ok(['send-due'], { env: transport });
    const links = await linksFromOutbox(ws.path('outbox'), id);
    expect([...links.keys()].sort()).toEqual([...addresses].sort());

    const server = await startServe(ws);
    // A mail provider's one-click POST (RFC 8058).
    const first = links.get(addresses[0]!)!;
    const oneClick = await fetch(onServer(server.base, first), {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'List-Unsubscribe=One-Click',
    });
    expect(oneClick.status).toBe(200);
    // A person: GET shows the page (and unsubscribes nobody), the button POSTs.
    const second = links.get(addresses[1]!)!;
    const page = await fetch(onServer(server.base, second));
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<form method="post">');
    expect(
      (
        await fetch(onServer(server.base, second), {
          method: 'POST',
          body: new URLSearchParams({ 'List-Unsubscribe': 'One-Click' }),
        })
      ).status,
    ).toBe(200);
    // A tampered link: 400, nothing changes.
    const tampered = first.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'));
    expect(
      (await fetch(onServer(server.base, tampered), { method: 'POST', body: 'List-Unsubscribe=One-Click' }))
        .status,
    ).toBe(400);
    await stopServe(server.child);

    // A site that handles /u/TOKEN itself hands the URL, or the bare token, to the CLI.
    const third = links.get(addresses[2]!)!;
    const byUrl = await ws.json<{ address: string; changed: boolean }>(['unsubscribe', third, '--json']);
    // Today's links (v2) leave the lists that newsletter went to (issue 14).
    expect(byUrl).toEqual({ address: addresses[2], changed: true, all: false, lists: ['readers'] });
    const again = await ws.run(['unsubscribe', third.split('/u/')[1]!]);
    expect(again, describeRun(['unsubscribe'], again)).toMatchObject({ code: 0 });
    expect(again.stdout).toContain('was already unsubscribed');
    const bad = await ws.run(['unsubscribe', tampered]);
    expect(bad.code).toBe(4);
    expect(bad.stderr).toContain('not valid');
    expect(bad.stderr).not.toContain('@');

    const next = await create();
    const run = await ws.run(['send-due'], { env: transport });
    expect(run, describeRun(['send-due'], run)).toMatchObject({ code: 0, stderr: '' });
    const shown = await ws.json<{ counts: { sent: number; skipped: number } }>([
      'show',
      String(next),
      '--json',
    ]);
    // They left the list "readers": no longer in its audience at all (a global opt-out would be
    // a `skipped` row instead, as test/e2e/issue14-lists.test.ts shows).
    expect(shown.counts).toMatchObject({ sent: 2, skipped: 0 });
    expect(skippedOf(ws, next)).toEqual([]);
    expect(new Set((await linksFromOutbox(ws.path('outbox'), next)).keys())).toEqual(
      new Set(addresses.slice(3)),
    );
  });

  it('after a key rotation the old links keep working until NEWSLETTER_SECRET_PREVIOUS_UNTIL', async () => {
    const ws = await workspace();
    const transport = { NEWSLETTER_TRANSPORT: 'file:./outbox' };
    const { addresses, create } = await prepare(ws, 4);
    const id = await create();
    await ws.ok(['send-due'], { env: transport });
    const links = await linksFromOutbox(ws.path('outbox'), id);
    const oldSecret = ws.env.NEWSLETTER_SECRET!;
    const rotated = { NEWSLETTER_SECRET: 'a-brand-new-secret-after-rotation-42' };
    const post = (base: string, link: string) =>
      fetch(onServer(base, link), { method: 'POST', body: 'List-Unsubscribe=One-Click' });

    // Rotated without keeping the old key: every link already sent is dead.
    let server = await startServe(ws, rotated);
    expect((await post(server.base, links.get(addresses[0]!)!)).status).toBe(400);
    await stopServe(server.child);

    // The old key kept as NEWSLETTER_SECRET_PREVIOUS: old links work.
    server = await startServe(ws, {
      ...rotated,
      NEWSLETTER_SECRET_PREVIOUS: oldSecret,
      NEWSLETTER_SECRET_PREVIOUS_UNTIL: '2999-12-31',
    });
    expect((await post(server.base, links.get(addresses[0]!)!)).status).toBe(200);
    await stopServe(server.child);

    // Past its date: refused again.
    server = await startServe(ws, {
      ...rotated,
      NEWSLETTER_SECRET_PREVIOUS: oldSecret,
      NEWSLETTER_SECRET_PREVIOUS_UNTIL: '2020-01-01T00:00Z',
    });
    expect((await post(server.base, links.get(addresses[1]!)!)).status).toBe(400);
    await stopServe(server.child);

    // The CLI accepts the previous key the same way.
    const viaCli = await ws.run(['unsubscribe', links.get(addresses[2]!)!], {
      env: { ...rotated, NEWSLETTER_SECRET_PREVIOUS: oldSecret },
    });
    expect(viaCli, describeRun(['unsubscribe'], viaCli)).toMatchObject({ code: 0 });

    // New messages carry links made with the new key only.
    const next = await create();
    await ws.ok(['send-due'], { env: { ...transport, ...rotated, NEWSLETTER_SECRET_PREVIOUS: oldSecret } });
    const fresh = (await linksFromOutbox(ws.path('outbox'), next)).get(addresses[3]!)!;
    expect(fresh).not.toBe(links.get(addresses[3]!));
    expect((await ws.run(['unsubscribe', fresh])).code).toBe(4); // the old key alone: not ours
    const withNew = await ws.run(['unsubscribe', fresh], { env: rotated });
    expect(withNew, describeRun(['unsubscribe'], withNew)).toMatchObject({ code: 0 });
  });

  it('serve refuses to start without NEWSLETTER_SECRET, and on a port in use', async () => {
    const ws = await workspace();
    await ws.ok(['init']);
    const missing = await ws.run(['serve', '--port', '0'], { env: { NEWSLETTER_SECRET: undefined } });
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain('NEWSLETTER_SECRET');
    const server = await startServe(ws);
    const port = new URL(server.base).port;
    const busy = await ws.run(['serve', '--port', port]);
    expect(busy.code).toBe(3);
    expect(busy.stderr).toContain('EADDRINUSE');
    await stopServe(server.child);
    expect((await ws.run(['serve', '--port', 'http'])).code).toBe(2);
  });
});
