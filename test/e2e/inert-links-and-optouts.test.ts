/**
 * Issue 13 through the built CLI: the links of test sends and previews unsubscribe nobody; an old
 * link never reaches a newcomer who got a removed person's place; an opt-out survives
 * `recipients remove`; `recipients forget` erases a person and keeps them out of re-imports.
 */
import { readdirSync, readFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { simpleParser } from 'mailparser';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createUnsubscribeToken } from '../../src/render/unsubscribe-token.js';
import { assertBuilt, describeRun, makeWorkspace, type Workspace } from '../helpers/cli.js';

const SECRET = 'test-secret-0123456789abcdef-xyz'; // makeWorkspace's NEWSLETTER_SECRET
const OUTBOX = { NEWSLETTER_TRANSPORT: 'file:./outbox' };
const cleanups: Array<() => Promise<void>> = [];

beforeAll(() => {
  assertBuilt();
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function workspace(): Promise<Workspace> {
  const ws = await makeWorkspace('newsletter-issue13-');
  cleanups.push(() => ws.cleanup());
  await ws.ok(['init']);
  return ws;
}

interface Listed {
  id: number;
  address: string;
  status: string;
}

const subscribers = (ws: Workspace) => ws.json<Listed[]>(['recipients', 'list', '--json']);

describe('test links are inert', () => {
  it('test-send and preview carry a test link: unsubscribe says so, exit 0, and nobody is unsubscribed', async () => {
    const ws = await workspace();
    const { file, addresses } = await ws.writeCsv(2);
    await ws.ok(['recipients', 'import', file, '--list', 'readers']);
    const id = await ws.createDue();

    await ws.ok(['test-send', String(id), '--to', 'me@example.org'], { env: OUTBOX });
    const [name] = readdirSync(ws.path('outbox')).filter((n) => n.endsWith('.eml'));
    const mail = await simpleParser(readFileSync(ws.path('outbox', name ?? 'missing')));
    const header = mail.headerLines.find((h) => h.key === 'list-unsubscribe')?.line ?? '';
    const link = /<(https:[^>]+)>/.exec(header.replace(/\r?\n\s+/g, ' '))?.[1] ?? '';
    expect(link).toMatch(/\/u\/v1\.test\./);
    expect(mail.html).toContain(link);

    const result = await ws.run(['unsubscribe', link]);
    expect(result.code, describeRun(['unsubscribe', link], result)).toBe(0);
    expect(result.stdout).toContain(`test link of newsletter ${id}: nothing changed`);
    expect(await ws.json(['unsubscribe', link, '--json'])).toEqual({
      test: true,
      newsletterId: id,
      changed: false,
    });

    await ws.ok(['preview', String(id), '--to-file', 'preview.html']);
    expect(readFileSync(ws.path('preview.html'), 'utf8')).toContain('/u/v1.test.');

    expect((await subscribers(ws)).map((s) => [s.address, s.status])).toEqual(
      addresses.map((address) => [address, 'active']),
    );
  });
});

describe('tokens stay bound to one person', () => {
  it('remove Grace, add Carol: Grace’s old link leaves Carol subscribed', async () => {
    const ws = await workspace();
    await ws.ok(['recipients', 'add', 'ann@example.org', '--list', 'readers']);
    await ws.ok(['recipients', 'add', 'grace@example.org', '--list', 'readers']);
    const grace = (await subscribers(ws)).find((s) => s.address === 'grace@example.org') as Listed;
    const link = `https://news.example.org/u/${createUnsubscribeToken(SECRET, { subscriberId: grace.id, newsletterId: 1 })}`;

    await ws.ok(['recipients', 'remove', 'grace@example.org']);
    await ws.ok(['recipients', 'add', 'carol@example.org', '--list', 'readers']);
    const carol = (await subscribers(ws)).find((s) => s.address === 'carol@example.org') as Listed;
    expect(carol.id).not.toBe(grace.id);

    const result = await ws.run(['unsubscribe', link]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('no longer exists');
    expect((await subscribers(ws)).map((s) => [s.address, s.status])).toEqual([
      ['ann@example.org', 'active'],
      ['carol@example.org', 'active'],
    ]);
  });
});

describe('opt-outs survive', () => {
  it('removing an unsubscribed person keeps a suppression, source "removed"; the re-import is skipped at send', async () => {
    const ws = await workspace();
    const { file, addresses } = await ws.writeCsv(2);
    await ws.ok(['recipients', 'import', file, '--list', 'readers']);
    await ws.ok(['recipients', 'unsubscribe', addresses[0] as string]);
    await ws.ok(['recipients', 'remove', addresses[0] as string]);
    await ws.ok(['recipients', 'import', file, '--list', 'readers']);

    const suppressed = await ws.json<{ address: string; source: string }[]>(['suppress', 'list', '--json']);
    expect(suppressed).toEqual([expect.objectContaining({ address: addresses[0], source: 'removed' })]);

    const id = await ws.createDue();
    await ws.ok(['send-due'], { env: OUTBOX });
    const shown = await ws.json<{ counts: Record<string, number> }>(['show', String(id), '--json']);
    expect(shown.counts).toMatchObject({ sent: 1, skipped: 1 });
  });

  it('forget erases the person and the ledger’s copies, keeps the counts, and keeps them out', async () => {
    const ws = await workspace();
    const { file, addresses } = await ws.writeCsv(3);
    const ann = addresses[0] as string;
    await ws.ok(['recipients', 'import', file, '--list', 'readers']);
    const id = await ws.createDue();
    await ws.ok(['send-due'], { env: OUTBOX });
    const before = await ws.json<{ counts: Record<string, number> }>(['show', String(id), '--json']);

    expect(await ws.json(['recipients', 'forget', ann, '--json'])).toEqual({
      forgotten: true,
      subscriber: true,
      deliveries: 1,
    });
    const after = await ws.json<{ counts: Record<string, number> }>(['show', String(id), '--json']);
    expect(after.counts).toEqual(before.counts);

    const db = new Database(ws.db, { readonly: true });
    try {
      const everything = ['subscribers', 'deliveries', 'suppressions', 'bounce_events', 'events']
        .map((table) => JSON.stringify(db.prepare(`SELECT * FROM ${table}`).all()))
        .join('\n');
      expect(everything).not.toContain(ann);
    } finally {
      db.close();
    }

    // The CRM's next export still has Ann: she stays out, and is not named in the output.
    const reimport = await ws.run(['recipients', 'import', file, '--list', 'readers']);
    expect(reimport.code).toBe(0);
    expect(reimport.stderr).toContain('1 row was left out: erased with `recipients forget`');
    expect(reimport.stderr + reimport.stdout).not.toContain(ann);
    expect((await subscribers(ws)).map((s) => s.address)).toEqual(addresses.slice(1));

    const add = await ws.run(['recipients', 'add', ann.toUpperCase()]);
    expect(add.code).not.toBe(0);
    expect(add.stderr).toContain('was erased with `recipients forget`');
    expect((await subscribers(ws)).map((s) => s.address)).toEqual(addresses.slice(1));
  });
});
