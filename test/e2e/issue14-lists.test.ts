/**
 * Issue 14, item 4 (sync and list management), through the built CLI with real files:
 *
 * - `recipients import --list L --sync` makes L the file: others leave, nobody is deleted, opt-outs
 *   (of L, of all mail) stay out, counted at the outbox; all or nothing; `--dry-run` changes nothing;
 * - `recipients remove EMAIL --list L`; `lists rename|delete` (refused while a newsletter that will
 *   be sent uses it);
 * - `recipients resubscribe` records who and why, refuses a bounce and an erased address;
 * - `recipients export` round-trips through `recipients import` byte for byte;
 * - per-list unsubscribe: `serve`'s page names the address and the lists, one-click leaves the
 *   newsletter's lists, "all mail" leaves everything, a v1 link keeps meaning all mail, each with
 *   its source; the page's template (NEWSLETTER_UNSUBSCRIBE_PAGE) escapes what it is given.
 *
 * Every refusal is checked to change nothing (the database file's digest).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { simpleParser } from 'mailparser';
import { describe, expect, it } from 'vitest';
import { createAllMailUnsubscribeToken } from '../../src/render/unsubscribe-token.js';
import { describeRun, type Workspace } from '../helpers/cli.js';
import { workspacesReapingChildren } from '../helpers/e2e-workspaces.js';
import { onServer, startServe, stopServe } from '../helpers/serve-process.js';

const workspace = workspacesReapingChildren('newsletter-lists-', { init: true });
const OUTBOX = { NEWSLETTER_TRANSPORT: 'file:./outbox' };

function query<T>(ws: Workspace, sql: string, ...params: unknown[]): T[] {
  const db = new Database(ws.db, { readonly: true });
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

const membersOf = async (ws: Workspace, list: string) =>
  (await ws.json<{ address: string }[]>(['recipients', 'list', '--list', list, '--json'])).map(
    (s) => s.address,
  );

/** A newsletter to `list` due now, sent through the file outbox; returns who got it. */
async function sendTo(ws: Workspace, list: string): Promise<{ id: number; to: string[] }> {
  const template = path.join(ws.copyTemplates(), 'welcome.mjml');
  const { id } = await ws.json<{ id: number }>([
    'create',
    '--subject',
    'Hello {{name}}',
    '--template',
    template,
    '--list',
    list,
    '--now',
    '--json',
  ]);
  const run = await ws.run(['send-due'], { env: OUTBOX });
  expect(run.code, describeRun(['send-due'], run)).toBe(0);
  const links = await linksOf(ws, id);
  return { id, to: [...links.keys()].sort() };
}

/** Each recipient of newsletter `id` and the https link of its List-Unsubscribe header. */
async function linksOf(ws: Workspace, id: number): Promise<Map<string, string>> {
  const links = new Map<string, string>();
  let names: string[] = [];
  try {
    names = readdirSync(ws.path('outbox'));
  } catch {
    return links;
  }
  for (const name of names.filter((n) => n.startsWith(`n${id}.`) && n.endsWith('.eml'))) {
    const mail = await simpleParser(readFileSync(ws.path('outbox', name)));
    const to = (Array.isArray(mail.to) ? mail.to[0] : mail.to)?.value[0]?.address ?? '';
    const header = mail.headerLines.find((h) => h.key === 'list-unsubscribe')?.line ?? '';
    const url = /<(https:[^>]+)>/.exec(header.replace(/\r?\n\s+/g, ' '))?.[1];
    if (url) links.set(to, url);
  }
  return links;
}

describe('recipients import --sync and --dry-run', () => {
  it('makes the list the file: others leave, nobody is deleted, opt-outs stay out; a send proves it', async () => {
    const ws = await workspace();
    await ws.write(
      'crm.csv',
      'email,name\nann@example.net,Ann\nbob@example.net,Bob\ncid@example.net,Cid\ndan@example.net,Dan\n',
    );
    await ws.ok(['recipients', 'import', 'crm.csv', '--list', 'customers']);
    await ws.ok(['recipients', 'unsubscribe', 'bob@example.net', '--list', 'customers']);
    await ws.ok(['recipients', 'unsubscribe', 'cid@example.net']);
    // `recipients list` says who left the list, not just "active".
    const listed = (await ws.ok(['recipients', 'list', '--list', 'customers'])).stdout;
    expect(listed).toMatch(/bob@example\.net +Bob +active +customers \(left\)/);
    expect(listed).toMatch(/cid@example\.net +Cid +unsubscribed +customers\s/);
    expect(listed).toMatch(/ann@example\.net +Ann +active +customers\s/);
    const listedJson = (await ws.json(['recipients', 'list', '--json'])) as {
      email: string;
      leftLists: string[];
    }[];
    expect(listedJson.find((s) => s.email === 'bob@example.net')?.leftLists).toEqual(['customers']);
    expect(listedJson.find((s) => s.email === 'ann@example.net')?.leftLists).toEqual([]);
    // The new export: Ann gone, Eve new; Bob and Cid (who opted out) still in the CRM.
    await ws.write(
      'crm2.csv',
      'email,name\nbob@example.net,Bob\ncid@example.net,Cid\ndan@example.net,Dan\neve@example.net,Eve\n',
    );

    const before = ws.dbDigest();
    const dry = await ws.run([
      'recipients',
      'import',
      'crm2.csv',
      '--list',
      'customers',
      '--sync',
      '--dry-run',
    ]);
    expect(dry.code, describeRun(['import', '--dry-run'], dry)).toBe(0);
    expect(dry.stdout).toContain('Dry run, nothing was changed');
    expect(dry.stdout).toContain('add 1 new subscriber and update 3');
    expect(dry.stdout).toContain('make 1 join list "customers"');
    expect(dry.stdout).toContain('make 1 leave list "customers"');
    expect(dry.stdout).toContain('2 addresses of the file opted out');
    expect(ws.dbDigest()).toEqual(before);
    const dryJson = await ws.json([
      'recipients',
      'import',
      'crm2.csv',
      '--list',
      'customers',
      '--sync',
      '--dry-run',
      '--json',
    ]);
    expect(dryJson).toMatchObject({
      dryRun: true,
      created: 1,
      updated: 3,
      joining: 1,
      leaving: 1,
      refused: 0,
      stayedOut: 2,
    });
    expect(ws.dbDigest()).toEqual(before);

    const synced = await ws.json<Record<string, unknown>>([
      'recipients',
      'import',
      'crm2.csv',
      '--list',
      'customers',
      '--sync',
      '--json',
    ]);
    expect(synced).toMatchObject({ created: 1, updated: 3, joined: 1, left: 1, stayedOut: 2 });
    expect(await membersOf(ws, 'customers')).toEqual([
      'bob@example.net',
      'cid@example.net',
      'dan@example.net',
      'eve@example.net',
    ]);
    // Ann left the list and is still a subscriber.
    expect(
      (await ws.json<{ address: string }[]>(['recipients', 'list', '--json'])).map((s) => s.address),
    ).toContain('ann@example.net');
    // The text form says joined and left.
    await ws.write('crm3.csv', 'email,name\ndan@example.net,Dan\n');
    const text = await ws.ok(['recipients', 'import', 'crm3.csv', '--list', 'customers', '--sync']);
    expect(text.stdout).toContain('list "customers" synced: 0 joined, 3 left');
    await ws.ok(['recipients', 'import', 'crm2.csv', '--list', 'customers', '--sync']);

    // Bob left the list, Cid all mail: neither is mailed; Dan and Eve are.
    const sent = await sendTo(ws, 'customers');
    expect(sent.to).toEqual(['dan@example.net', 'eve@example.net']);
  });

  it('is all or nothing, needs --list, and refuses --skip-invalid; the dry run of a bad file changes nothing', async () => {
    const ws = await workspace();
    await ws.write('crm.csv', 'email,name\nann@example.net,Ann\nbob@example.net,Bob\n');
    await ws.ok(['recipients', 'import', 'crm.csv', '--list', 'customers']);
    await ws.write('bad.csv', 'email,name\nann@example.net,Ann\nnot-an-address,Zed\n');
    const before = ws.dbDigest();

    const bad = await ws.run(['recipients', 'import', 'bad.csv', '--list', 'customers', '--sync']);
    expect(bad.code, describeRun(['import', '--sync'], bad)).toBe(4);
    expect(bad.stderr).toContain('nothing was imported');
    const noList = await ws.run(['recipients', 'import', 'crm.csv', '--sync']);
    expect(noList.code).toBe(2);
    expect(noList.stderr).toContain('--sync needs --list');
    const skip = await ws.run([
      'recipients',
      'import',
      'bad.csv',
      '--list',
      'customers',
      '--sync',
      '--skip-invalid',
    ]);
    expect(skip.code).toBe(2);
    expect(skip.stderr).toContain('--skip-invalid');
    const dry = await ws.run([
      'recipients',
      'import',
      'bad.csv',
      '--list',
      'customers',
      '--dry-run',
      '--skip-invalid',
    ]);
    expect(dry.code, describeRun(['import', '--dry-run'], dry)).toBe(0);
    expect(dry.stdout).toContain('refuse 1 row (1 invalid, 0 erased');
    expect(ws.dbDigest()).toEqual(before);
    expect(await membersOf(ws, 'customers')).toEqual(['ann@example.net', 'bob@example.net']);
  });
});

describe('remove from one list, rename and delete lists', () => {
  it('remove --list takes one membership; rename keeps newsletters and opt-outs; delete is refused while a newsletter will be sent', async () => {
    const ws = await workspace();
    await ws.write('a.csv', 'email,name\nann@example.net,Ann\nbob@example.net,Bob\n');
    await ws.ok(['recipients', 'import', 'a.csv', '--list', 'customers']);
    await ws.ok(['recipients', 'import', 'a.csv', '--list', 'partners']);

    await ws.ok(['recipients', 'remove', 'ann@example.net', '--list', 'partners']);
    expect(await membersOf(ws, 'partners')).toEqual(['bob@example.net']);
    expect(await membersOf(ws, 'customers')).toEqual(['ann@example.net', 'bob@example.net']);
    let before = ws.dbDigest();
    for (const [args, text] of [
      [['recipients', 'remove', 'ann@example.net', '--list', 'partners'], 'is not on list "partners"'],
      [['recipients', 'remove', 'ann@example.net', '--list', 'nope'], 'There is no list "nope"'],
      [['recipients', 'remove', 'zed@example.net', '--list', 'partners'], 'There is no subscriber'],
      [['lists', 'rename', 'nope', 'x'], 'There is no list "nope"'],
      [['lists', 'rename', 'customers', 'partners'], 'There is already a list "partners"'],
      [['lists', 'delete', 'nope'], 'There is no list "nope"'],
    ] as const) {
      const refused = await ws.run(args);
      expect(refused.code, describeRun(args, refused)).toBe(4);
      expect(refused.stderr).toContain(text);
    }
    expect(ws.dbDigest()).toEqual(before);

    await ws.ok(['recipients', 'unsubscribe', 'bob@example.net', '--list', 'customers']);
    const template = path.join(ws.copyTemplates(), 'welcome.mjml');
    const { id } = await ws.json<{ id: number }>([
      'create',
      '--subject',
      'Later',
      '--template',
      template,
      '--list',
      'customers',
      '--at',
      '+2h',
      '--json',
    ]);
    await ws.ok(['lists', 'rename', 'customers', 'clients']);
    expect(await ws.json<{ lists: string[] }>(['show', String(id), '--json'])).toMatchObject({
      lists: ['clients'],
    });
    expect(await ws.json(['lists', '--json'])).toEqual([
      { name: 'clients', members: 2, reachable: 1 },
      { name: 'partners', members: 1, reachable: 1 },
    ]);

    before = ws.dbDigest();
    const refused = await ws.run(['lists', 'delete', 'clients']);
    expect(refused.code, describeRun(['lists', 'delete'], refused)).toBe(4);
    expect(refused.stderr).toContain(`newsletter ${id} "Later" is scheduled`);
    expect(refused.stderr).toContain('newsletter cancel');
    expect(ws.dbDigest()).toEqual(before);

    await ws.ok(['cancel', String(id)]);
    const deleted = await ws.json(['lists', 'delete', 'clients', '--json']);
    expect(deleted).toEqual({ deleted: true, list: 'clients', members: 2, drafts: [] });
    expect((await ws.json<{ name: string }[]>(['lists', '--json'])).map((l) => l.name)).toEqual(['partners']);
    expect((await ws.json<unknown[]>(['recipients', 'list', '--json'])).length).toBe(2);
  });
});

describe('recipients resubscribe', () => {
  it('clears the opt-out and records who and why; refuses a bounce and an erased address, changing nothing', async () => {
    const ws = await workspace();
    await ws.write('a.csv', 'email,name\nann@example.net,Ann\nbob@example.net,Bob\ncid@example.net,Cid\n');
    await ws.ok(['recipients', 'import', 'a.csv', '--list', 'customers']);
    await ws.ok(['recipients', 'unsubscribe', 'ann@example.net']);
    await ws.ok(['recipients', 'unsubscribe', 'ann@example.net', '--list', 'customers']);

    const missing = await ws.run(['recipients', 'resubscribe', 'ann@example.net']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--reason');
    const empty = await ws.run(['recipients', 'resubscribe', 'ann@example.net', '--reason', '  ']);
    expect(empty.code).toBe(4);

    const some = await ws.run(
      ['recipients', 'resubscribe', 'ann@example.net', '--list', 'customers', '--reason', 'asked by phone'],
      { env: { USER: 'clerk', SUDO_USER: 'ada' } },
    );
    expect(some.code, describeRun(['resubscribe'], some)).toBe(0);
    expect(some.stdout).toContain('Resubscribed ann@example.net to list "customers"');
    expect(some.stderr).toContain('still unsubscribed from all mail');
    const all = await ws.json(
      ['recipients', 'resubscribe', 'ann@example.net', '--reason', 'ticket 4411', '--json'],
      {
        env: { USER: 'clerk', SUDO_USER: '' },
      },
    );
    expect(all).toMatchObject({ by: 'clerk', reason: 'ticket 4411', clearedAll: true });
    const events = query<{ detail: string }>(
      ws,
      "SELECT detail FROM events WHERE kind = 'resubscribe' ORDER BY id",
    ).map((e) => JSON.parse(e.detail));
    expect(events).toEqual([
      expect.objectContaining({
        by: 'ada',
        reason: 'asked by phone',
        lists: ['customers'],
        clearedLists: ['customers'],
      }),
      expect.objectContaining({ by: 'clerk', reason: 'ticket 4411', lists: null, clearedAll: true }),
    ]);
    expect((await sendTo(ws, 'customers')).to).toEqual([
      'ann@example.net',
      'bob@example.net',
      'cid@example.net',
    ]);

    await ws.ok(['suppress', 'add', 'bob@example.net', '--reason', 'bounced 5.1.1']);
    await ws.ok(['recipients', 'forget', 'cid@example.net']);
    const before = ws.dbDigest();
    const bounced = await ws.run(['recipients', 'resubscribe', 'bob@example.net', '--reason', 'x']);
    expect(bounced.code).toBe(4);
    expect(bounced.stderr).toContain('is suppressed');
    expect(bounced.stderr).toContain('suppress remove bob@example.net');
    const erased = await ws.run(['recipients', 'resubscribe', 'cid@example.net', '--reason', 'x']);
    expect(erased.code).toBe(4);
    expect(erased.stderr).toContain('erased with `recipients forget`');
    expect(ws.dbDigest()).toEqual(before);
  });
});

describe('recipients export', () => {
  it('writes CSV that round-trips through import unchanged, byte for byte, into the same or a new database', async () => {
    const ws = await workspace();
    // Mailchimp's header, awkward values: a comma, a quote, a line break, accents.
    await ws.write(
      'mc.csv',
      '"Email Address","First Name","Last Name",City\n' +
        'ann@example.net,Ann,"Smith, Jr.",Paris\n' +
        'Bob@Example.net,Bob,"O""Hara","Saint-\nÉtienne"\n' +
        'cid@example.net,Cid,,\n',
    );
    await ws.ok(['recipients', 'import', 'mc.csv', '--list', 'customers']);
    await ws.ok(['recipients', 'add', 'bob@example.net', '--list', 'partners', '--name', 'Bob B']);
    await ws.ok(['recipients', 'add', 'dan@example.net', '--name', 'Dan']);

    const exported = await ws.ok(['recipients', 'export']);
    expect(exported.stdout.split('\n')[0]).toBe('email,name,city,first_name,last_name,lists');
    // The address as last written (`recipients add` lower-cased it), every field, both lists.
    expect(exported.stdout).toContain(
      'bob@example.net,Bob B,"Saint-\nÉtienne",Bob,"O""Hara",customers;partners\n',
    );
    expect(exported.stdout).toContain('ann@example.net,,Paris,Ann,"Smith, Jr.",customers\n');
    expect(exported.stdout).toContain('dan@example.net,Dan,,,,\n');
    await ws.ok(['recipients', 'export', '--output', 'all.csv']);
    expect(readFileSync(ws.path('all.csv'), 'utf8')).toBe(exported.stdout);
    expect((await import('node:fs')).statSync(ws.path('all.csv')).mode & 0o777).toBe(0o600);
    const exists = await ws.run(['recipients', 'export', '--output', 'all.csv']);
    expect(exists.code).toBe(4);
    expect(exists.stderr).toContain('already exists');
    expect(readFileSync(ws.path('all.csv'), 'utf8')).toBe(exported.stdout);

    // The same database: nothing would change, and nothing does.
    const dry = await ws.json(['recipients', 'import', 'all.csv', '--dry-run', '--json']);
    expect(dry).toMatchObject({ created: 0, updated: 4, joining: 0, leaving: 0, refused: 0 });
    await ws.ok(['recipients', 'import', 'all.csv']);
    expect((await ws.ok(['recipients', 'export'])).stdout).toBe(exported.stdout);

    // A new database: the same subscribers, fields and lists.
    const other = await workspace();
    await other.write('all.csv', exported.stdout);
    await other.ok(['recipients', 'import', 'all.csv']);
    expect((await other.ok(['recipients', 'export'])).stdout).toBe(exported.stdout);
    expect(await membersOf(other, 'partners')).toEqual(['bob@example.net']);

    const list = await ws.ok(['recipients', 'export', '--list', 'partners']);
    expect(list.stdout).toBe(
      'email,name,city,first_name,last_name,lists\nbob@example.net,Bob B,"Saint-\nÉtienne",Bob,"O""Hara",customers;partners\n',
    );
    const unknown = await ws.run(['recipients', 'export', '--list', 'nope']);
    expect(unknown.code).toBe(4);
  });
});

const oneClick = (url: string, body = 'List-Unsubscribe=One-Click') =>
  fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body });

describe('per-list unsubscribe (RFC 8058)', () => {
  it("one-click leaves the newsletter's lists, the page offers all mail too, a v1 link means all mail; each source recorded", async () => {
    const ws = await workspace();
    await ws.write(
      'a.csv',
      "email,name\nann@example.net,Ann\nbob@example.net,Bob\ncid@example.net,Cid\no'hara&co@example.net,Kim\n",
    );
    await ws.ok(['recipients', 'import', 'a.csv', '--list', 'customers']);
    await ws.ok(['recipients', 'import', 'a.csv', '--list', 'partners']);
    const first = await sendTo(ws, 'customers');
    const links = await linksOf(ws, first.id);
    expect(links.get('ann@example.net')).toMatch(/\/u\/v2\./);

    await ws.write(
      'page.html',
      '<html><body><h1>{{ title }}</h1><p class="who">{{email}}</p><p class="lists">{{lists}}</p><p>{{text}}</p>{{form}}<footer>Example News</footer></body></html>',
    );
    const server = await startServe(ws, { NEWSLETTER_UNSUBSCRIBE_PAGE: ws.path('page.html') });
    // GET: the page names the address and the list, with both buttons; it changes nothing.
    const page = await fetch(onServer(server.base, links.get('ann@example.net')!));
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('<p class="who">ann@example.net</p><p class="lists">customers</p>');
    expect(html).toContain('Unsubscribe from customers');
    expect(html).toContain('Unsubscribe from all mail from us');
    expect(html).toContain('<footer>Example News</footer>');
    // The address is escaped where it is written in.
    const kim = await (await fetch(onServer(server.base, links.get("o'hara&co@example.net")!))).text();
    expect(kim).toContain('<p class="who">o&#39;hara&amp;co@example.net</p>');
    expect(kim).not.toContain("o'hara&co");

    // A provider's one-click: the lists of that newsletter.
    expect((await oneClick(onServer(server.base, links.get('ann@example.net')!))).status).toBe(200);
    // The page's list button, then its "all mail" button.
    const bobUrl = onServer(server.base, links.get('bob@example.net')!);
    const done = await oneClick(bobUrl, 'List-Unsubscribe=One-Click&via=page');
    expect(await done.text()).toContain('will not receive mail from customers any more');
    expect(
      (
        await oneClick(
          onServer(server.base, links.get('cid@example.net')!),
          'List-Unsubscribe=One-Click&via=page&scope=all',
        )
      ).status,
    ).toBe(200);
    // A link of a message sent before per-list unsubscribes (v1): all mail, as it promised.
    const kimId = query<{ id: number }>(
      ws,
      'SELECT id FROM subscribers WHERE address = ?',
      "o'hara&co@example.net",
    )[0]!.id;
    const v1 = createAllMailUnsubscribeToken(ws.env.NEWSLETTER_SECRET!, {
      subscriberId: kimId,
      newsletterId: first.id,
    });
    expect((await oneClick(`${server.base}/u/${v1}`)).status).toBe(200);
    await stopServe(server.child);

    expect(query(ws, 'SELECT list_name, address, source FROM list_opt_outs ORDER BY address')).toEqual([
      { list_name: 'customers', address: 'ann@example.net', source: 'one-click' },
      { list_name: 'customers', address: 'bob@example.net', source: 'page' },
    ]);
    expect(
      query(
        ws,
        "SELECT address, unsubscribe_source FROM subscribers WHERE status = 'unsubscribed' ORDER BY address",
      ),
    ).toEqual([
      { address: 'cid@example.net', unsubscribe_source: 'page-all' },
      { address: "o'hara&co@example.net", unsubscribe_source: 'one-click' },
    ]);

    // customers: nobody left to mail. partners: Ann and Bob still get it.
    const again = await sendTo(ws, 'customers');
    expect(again.to).toEqual([]);
    expect((await sendTo(ws, 'partners')).to).toEqual(['ann@example.net', 'bob@example.net']);

    // The same opt-out from the command line, by list, and a page template without {{form}} refused.
    await ws.ok(['recipients', 'unsubscribe', 'ann@example.net', '--list', 'partners']);
    expect((await sendTo(ws, 'partners')).to).toEqual(['bob@example.net']);
    await ws.write('broken.html', '<p>{{email}}</p>');
    const broken = await ws.run(['serve', '--port', '0'], {
      env: { NEWSLETTER_UNSUBSCRIBE_PAGE: ws.path('broken.html') },
    });
    expect(broken.code).toBe(3);
    expect(broken.stderr).toContain('{{form}}');
  });
});
