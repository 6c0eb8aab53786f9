/**
 * The whole product through the built CLI, as an operator and cron use it: a real SQLite file in
 * a temporary folder, a real SMTP server on 127.0.0.1 (test/helpers/smtp-sink.ts), and each
 * command a child process with no terminal.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { type ParsedMail, simpleParser } from 'mailparser';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, describeRun, makeWorkspace, runCli, sha256Of, type Workspace } from '../helpers/cli.js';
import { asCreatedBeforeStoredTemplates } from '../helpers/legacy-newsletter.js';
import { type SmtpSink, startSmtpSink } from '../helpers/smtp-sink.js';

interface Counts {
  audience: number;
  sent: number;
  failed: number;
  skipped: number;
  unknown: number;
  retry: number;
  claimed: number;
  pending: number;
}

interface Shown {
  id: number;
  status: string;
  subject: string;
  failureReason: string | null;
  counts: Counts;
  attention: { address: string; state: string; reply: string | null; messageId: string }[];
}

const COUNT_KEYS = ['sent', 'failed', 'skipped', 'unknown', 'retry', 'claimed', 'pending'] as const;

const open: Array<{ cleanup?: () => Promise<void>; close?: () => Promise<void> }> = [];

beforeAll(() => {
  assertBuilt();
});

afterEach(async () => {
  for (const resource of open.splice(0).reverse()) {
    await resource.close?.();
    await resource.cleanup?.();
  }
});

async function workspace(): Promise<Workspace> {
  const ws = await makeWorkspace();
  open.push(ws);
  return ws;
}

async function sink(...args: Parameters<typeof startSmtpSink>): Promise<SmtpSink> {
  const started = await startSmtpSink(...args);
  open.push(started);
  return started;
}

/** init + import (with --list readers) of `count` subscribers; returns their addresses. */
async function prepare(ws: Workspace, count: number, extraRows: string[] = []): Promise<string[]> {
  await ws.ok(['init']);
  const { file, addresses } = await ws.writeCsv(count);
  if (extraRows.length > 0) writeFileSync(file, `${readFileSync(file, 'utf8')}${extraRows.join('\n')}\n`);
  await ws.ok(['recipients', 'import', file, '--list', 'readers']);
  return addresses;
}

async function create(ws: Workspace, args: string[] = [], template?: string): Promise<number> {
  const created = await ws.json<{ id: number; status: string }>([
    'create',
    '--subject',
    'Hello {{name}}',
    '--template',
    template ?? path.join(ws.copyTemplates(), 'welcome.mjml'),
    '--list',
    'readers',
    '--json',
    ...args,
  ]);
  expect(created.id).toEqual(expect.any(Number));
  return created.id;
}

const show = (ws: Workspace, id: number) => ws.json<Shown>(['show', String(id), '--json']);

function expectAllCountKeys(counts: Counts): void {
  for (const key of COUNT_KEYS) expect(counts[key], `counts.${key}`).toEqual(expect.any(Number));
}

function headerLine(mail: ParsedMail, name: string): string | undefined {
  return mail.headerLines.find((h) => h.key === name.toLowerCase())?.line;
}

describe('newsletter end to end, with a real SMTP server', () => {
  it('init → import → create → test-send → schedule → send-due → show; a rerun sends nothing more', async () => {
    const ws = await workspace();
    const smtp = await sink();
    const env = { NEWSLETTER_TRANSPORT: smtp.url };
    const addresses = await prepare(ws, 5, ['tom@example.net,Tom & <b>Jerry</b>,Town']);
    addresses.push('tom@example.net');

    const id = await create(ws);
    const draft = await show(ws, id);
    expect(draft.status).toBe('draft');

    // preview: personalised for a chosen subscriber, fields HTML-escaped, nothing sent.
    const preview = await ws.json<{ file: string; to: string; subject: string }>([
      'preview',
      String(id),
      '--recipient',
      'tom@example.net',
      '--to-file',
      'preview.html',
      '--json',
    ]);
    expect(preview.file).toBe(ws.path('preview.html'));
    expect(preview.to).toBe('tom@example.net');
    expect(preview.subject).toBe('Hello Tom & <b>Jerry</b>');
    const html = readFileSync(ws.path('preview.html'), 'utf8');
    expect(html).toContain('Welcome, Tom &amp; &lt;b&gt;Jerry&lt;/b&gt;');
    expect(html).not.toContain('<b>Jerry</b>');
    expect(html).toContain('tom@example.net');
    expect(html).toMatch(/href="https:\/\/news\.example\.org\/u\/[^"]+"/);
    expect(html).not.toContain('{{');

    // test-send: one message through the configured transport; the ledger stays empty.
    await ws.ok(['test-send', String(id), '--to', 'tester@example.com'], { env });
    expect(smtp.count('tester@example.com')).toBe(1);
    expect(smtp.total).toBe(1);
    const afterTest = await show(ws, id);
    expectAllCountKeys(afterTest.counts);
    expect(afterTest.counts).toMatchObject({
      sent: 0,
      failed: 0,
      skipped: 0,
      unknown: 0,
      retry: 0,
      claimed: 0,
      pending: 6,
    });
    expect(await ws.json(['runs', '--json'])).toEqual([]);

    await ws.ok(['schedule', String(id), '--now']);
    const sent = await ws.run(['send-due'], { env });
    expect(sent, describeRun(['send-due'], sent)).toMatchObject({ code: 0, stdout: '', stderr: '' });

    const shown = await show(ws, id);
    expect(shown.status).toBe('sent');
    expectAllCountKeys(shown.counts);
    expect(shown.counts).toMatchObject({
      audience: 6,
      sent: 6,
      failed: 0,
      skipped: 0,
      unknown: 0,
      retry: 0,
      claimed: 0,
      pending: 0,
    });
    expect(smtp.total).toBe(7);
    const messageIds = new Set<string>();
    for (const address of addresses) {
      expect(smtp.count(address), address).toBe(1);
      const message = smtp.messages.find((m) => m.to.includes(address));
      const mail = await simpleParser(message!.raw);
      expect(mail.text?.trim()).toBeTruthy();
      expect(mail.html).toBeTruthy();
      expect(mail.html).toContain(address);
      expect(mail.subject).toMatch(/^Hello /);
      // No mailto: NEWSLETTER_RETURN_PATH is not set, so no mailbox is known to read one (issue 18).
      expect(headerLine(mail, 'List-Unsubscribe')).toMatch(
        /^List-Unsubscribe:\s*<https:\/\/news\.example\.org\/u\/[^>]+>\s*$/,
      );
      // The envelope sender names this delivery (VERP).
      expect(message!.from).toMatch(/^news\+b[a-z2-7]{26}@example\.org$/);
      expect(headerLine(mail, 'List-Unsubscribe-Post')).toMatch(/List-Unsubscribe=One-Click/);
      messageIds.add(mail.messageId ?? '');
    }
    expect(messageIds.size).toBe(6);

    const rerun = await ws.run(['send-due'], { env });
    expect(rerun).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(smtp.total).toBe(7);
    expect((await show(ws, id)).counts.sent).toBe(6);

    // Every data command prints one JSON document and nothing else on stdout.
    const recipients = await ws.json<{ email: string; lists: string[]; status: string }[]>([
      'recipients',
      'list',
      '--json',
    ]);
    expect(recipients.map((r) => r.email).sort()).toEqual([...addresses].sort());
    expect(recipients.every((r) => r.lists.includes('readers') && r.status === 'active')).toBe(true);
    const lists = await ws.json<{ name: string; members: number }[]>([
      'recipients',
      'list',
      '--lists',
      '--json',
    ]);
    expect(lists).toEqual([expect.objectContaining({ name: 'readers', members: 6 })]);
    const newsletters = await ws.json<(Shown & { counts: Counts })[]>(['list', '--json']);
    expect(newsletters).toHaveLength(1);
    expect(newsletters[0]).toMatchObject({ id, status: 'sent', counts: { sent: 6 } });
    const status = await ws.json<{ newsletters: Shown[]; attention: string[]; liveRuns: unknown[] }>([
      'status',
      '--json',
    ]);
    expect(status.newsletters).toEqual([expect.objectContaining({ id, status: 'sent' })]);
    expect(status.attention).toEqual([]);
    expect(status.liveRuns).toEqual([]);
    const runs = await ws.json<{ hostId: string; outcome: string; endedAt: string; counts: Counts }[]>([
      'runs',
      '--json',
    ]);
    // The idle rerun registered no run.
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ hostId: 'test-host-a', outcome: 'ok', counts: { sent: 6 } });
    expect(runs[0]?.endedAt).toEqual(expect.any(String));
  });

  it('cancel stops a newsletter that is already due', async () => {
    const ws = await workspace();
    const smtp = await sink();
    await prepare(ws, 3);
    const id = await create(ws, ['--at', 'now']);
    expect((await show(ws, id)).status).toBe('scheduled');

    const cancelled = await ws.ok(['cancel', String(id)]);
    expect(cancelled.stdout).toContain(`Cancelled newsletter ${id}`);
    const run = await ws.run(['send-due'], { env: { NEWSLETTER_TRANSPORT: smtp.url } });
    expect(run).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(smtp.connections).toBe(0);
    const shown = await show(ws, id);
    expect(shown.status).toBe('cancelled');
    expect(shown.counts).toMatchObject({ sent: 0, claimed: 0, pending: 3 });
    // A cancelled newsletter cannot be cancelled or scheduled again.
    expect((await ws.run(['cancel', String(id)])).code).toBe(4);
    expect((await ws.run(['schedule', String(id), '--now'])).code).toBe(4);
  });

  it('an unsubscribed recipient is skipped; a 550 5.1.1 fails with the reply, is suppressed, and exits 0', async () => {
    const ws = await workspace();
    const smtp = await sink({
      faults: [
        {
          to: 'reader2@example.net',
          fault: { kind: 'rejectRcpt', code: 550, text: '5.1.1 <reader2@example.net>: user unknown' },
        },
      ],
    });
    const env = { NEWSLETTER_TRANSPORT: smtp.url };
    await prepare(ws, 4);
    await ws.ok(['recipients', 'unsubscribe', 'READER3@example.net']);
    const first = await create(ws, ['--at', 'now']);

    // A suppressed hard bounce is list hygiene: nothing for cron to mail (README, "Exit codes").
    const run = await ws.run(['send-due'], { env });
    expect(run, describeRun(['send-due'], run)).toMatchObject({ code: 0, stdout: '', stderr: '' });
    const shown = await show(ws, first);
    expect(shown.status).toBe('sent');
    expect(shown.counts).toMatchObject({ audience: 4, sent: 2, failed: 1, skipped: 1, unknown: 0, retry: 0 });
    expect(shown.attention).toEqual([
      expect.objectContaining({
        address: 'reader2@example.net',
        state: 'failed',
        reply: expect.stringMatching(/550.*5\.1\.1.*user unknown/),
      }),
    ]);
    expect(smtp.count('reader1@example.net')).toBe(1);
    expect(smtp.count('reader4@example.net')).toBe(1);
    expect(smtp.received('reader3@example.net')).toBe(0);

    // The next newsletter skips the suppressed address without trying it.
    const second = await create(ws, ['--at', 'now']);
    const again = await ws.run(['send-due'], { env });
    expect(again, describeRun(['send-due'], again)).toMatchObject({ code: 0, stdout: '', stderr: '' });
    const next = await show(ws, second);
    expect(next.counts).toMatchObject({ sent: 2, failed: 0, skipped: 2 });
    expect(smtp.total).toBe(4);
    // Each skip is recorded with its reason (read straight from the ledger, read-only).
    const db = new Database(ws.db, { readonly: true });
    const skipped = db
      .prepare(
        "SELECT address, reason FROM deliveries WHERE newsletter_id = ? AND state = 'skipped' ORDER BY address",
      )
      .all(second) as { address: string; reason: string }[];
    db.close();
    expect(skipped).toEqual([
      { address: 'reader2@example.net', reason: expect.stringMatching(/suppress/i) },
      { address: 'reader3@example.net', reason: expect.stringMatching(/unsubscribed/i) },
    ]);
  });

  it('a template broken after create: the newsletter fails with the reason, nothing is sent, exit 8', async () => {
    const ws = await workspace();
    const smtp = await sink();
    await prepare(ws, 3);
    const templates = ws.copyTemplates();
    const template = path.join(templates, 'welcome.mjml');
    const id = await create(ws, ['--at', 'now'], template);
    // Only a newsletter from before templates were stored reads its file at send time (issue 14;
    // one created now sends its stored copy: test/e2e/newsletter-life.test.ts).
    asCreatedBeforeStoredTemplates(ws.db, id);

    const source = readFileSync(template, 'utf8');
    writeFileSync(template, source.replace('<mj-button ', '<mj-button colour-of-sky="blue" '));
    const run = await ws.run(['send-due'], { env: { NEWSLETTER_TRANSPORT: smtp.url } });
    expect(run.code, describeRun(['send-due'], run)).toBe(8);
    expect(run.stderr).toContain('failed to build');
    expect(run.stderr).toContain('colour-of-sky');

    const shown = await show(ws, id);
    expect(shown.status).toBe('failed');
    expect(shown.failureReason).toContain('colour-of-sky');
    expect(shown.counts).toMatchObject({ sent: 0, claimed: 0, failed: 0, unknown: 0 });
    expect(smtp.total).toBe(0);
    expect(smtp.connections).toBe(0);

    // A failed newsletter stays failed: the next run has nothing to do.
    const rerun = await ws.run(['send-due'], { env: { NEWSLETTER_TRANSPORT: smtp.url } });
    expect(rerun).toMatchObject({ code: 0, stdout: '', stderr: '' });
  });
});

describe('send-due --dry-run and the file outbox', () => {
  it('--dry-run changes no byte of the database, needs no transport, and counts what would go', async () => {
    const ws = await workspace();
    const addresses = await prepare(ws, 4);
    await ws.ok(['recipients', 'unsubscribe', addresses[0]!]);
    const id = await create(ws, ['--at', 'now']);

    const before = ws.dbDigest();
    expect(before.db).not.toBeNull();
    const env = { NEWSLETTER_TRANSPORT: undefined };
    const dry = await ws.json<{
      dryRun: boolean;
      ok: boolean;
      newsletters: { id: number; ok: boolean; wouldSend: number; wouldSkip: number }[];
    }>(['send-due', '--dry-run', '--json'], { env });
    expect(dry).toMatchObject({ dryRun: true, ok: true });
    expect(dry.newsletters).toEqual([expect.objectContaining({ id, ok: true, wouldSend: 3, wouldSkip: 1 })]);
    expect(ws.dbDigest()).toEqual(before);

    // The text report too, through a pipe (CI reads it from one), and still nothing written.
    const text = await ws.run(['send-due', '--dry-run'], { env });
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`ok  newsletter ${id} (`);
    expect(text.stdout).toContain('would send 3, skip 1');
    expect(text.stderr).toContain('a real send would refuse');
    expect(ws.dbDigest()).toEqual(before);
    expect((await show(ws, id)).status).toBe('scheduled');
    expect(ws.dbDigest()).toEqual(before);

    // The file outbox: one .eml per recipient, named by Message-ID.
    const run = await ws.run(['send-due'], { env: { NEWSLETTER_TRANSPORT: 'file:./outbox' } });
    expect(run, describeRun(['send-due'], run)).toMatchObject({ code: 0, stdout: '', stderr: '' });
    const files = readdirSync(ws.path('outbox')).sort();
    expect(files).toHaveLength(3);
    expect(files.every((f) => f.endsWith('.eml'))).toBe(true);
    const to: string[] = [];
    for (const file of files) {
      const mail = await simpleParser(readFileSync(ws.path('outbox', file)));
      expect(`${mail.messageId?.replace(/^<|>$/g, '')}.eml`).toBe(file);
      expect(mail.text?.trim()).toBeTruthy();
      expect(headerLine(mail, 'List-Unsubscribe')).toContain('https://news.example.org/u/');
      to.push(
        ...(Array.isArray(mail.to) ? mail.to : [mail.to])
          .flatMap((a) => a?.value ?? [])
          .map((a) => a.address ?? ''),
      );
    }
    expect(to.sort()).toEqual(addresses.slice(1).sort());
    expect((await show(ws, id)).counts).toMatchObject({ sent: 3, skipped: 1, pending: 0 });
  });

  it('exports as they are: a Mailchimp CSV, --map, {{FirstName}}-style fields and a default, to the outbox', async () => {
    const ws = await workspace();
    await ws.ok(['init']);
    const mailchimp = await ws.write(
      'mailchimp.csv',
      '"Email Address","First Name","Last Name","City"\nann@example.org,Ann,Lee,Leith\nbob@example.org,Bob,,\n',
    );
    const imported = await ws.json<{ fields: string[] }>([
      'recipients',
      'import',
      mailchimp,
      '--list',
      'readers',
      '--json',
    ]);
    expect(imported.fields).toEqual(['first_name', 'last_name', 'city']);
    const french = await ws.write('crm.csv', 'Courriel,Prénom,Ville\ncleo@example.org,Cléo,Lyon & Co\n');
    await ws.ok([
      'recipients',
      'import',
      french,
      '--list',
      'readers',
      '--map',
      'Courriel=email',
      '--map',
      'Prénom=First Name',
      '--map',
      'ville=city',
    ]);

    // recipients add takes a field in any case too.
    await ws.ok([
      'recipients',
      'add',
      'dan@example.org',
      '--list',
      'readers',
      '--field',
      'First_Name=Dan',
      '--field',
      'City=Oslo',
    ]);

    const templates = ws.copyTemplates();
    const template = path.join(templates, 'fields.mjml');
    writeFileSync(
      template,
      `<mjml><mj-body><mj-section><mj-column><mj-text>
        <p>Hello {{First_Name}} {{LAST_NAME | default: "friend"}}, meet-ups near {{ city | default: "your area" }}.</p>
        <p>Region: {{ region | default: 'everywhere' }}</p>
      </mj-text></mj-column></mj-section><mj-include path="./partials/footer.mjml" /></mj-body></mjml>\n`,
    );
    await create(ws, ['--at', 'now'], template);
    const run = await ws.run(['send-due'], { env: { NEWSLETTER_TRANSPORT: 'file:./outbox' } });
    expect(run, describeRun(['send-due'], run)).toMatchObject({ code: 0 });
    const mails = new Map<string, ParsedMail>();
    for (const file of readdirSync(ws.path('outbox'))) {
      const mail = await simpleParser(readFileSync(ws.path('outbox', file)));
      const to = Array.isArray(mail.to) ? mail.to[0] : mail.to;
      mails.set(to?.value[0]?.address ?? '', mail);
    }
    expect([...mails.keys()].sort()).toEqual([
      'ann@example.org',
      'bob@example.org',
      'cleo@example.org',
      'dan@example.org',
    ]);
    expect(mails.get('dan@example.org')!.html).toContain('Hello Dan friend, meet-ups near Oslo.');
    const ann = mails.get('ann@example.org')!;
    expect(ann.html).toContain('Hello Ann Lee, meet-ups near Leith.');
    expect(ann.html).toContain('Region: everywhere');
    const bob = mails.get('bob@example.org')!;
    expect(bob.html).toContain('Hello Bob friend, meet-ups near your area.');
    expect(bob.text).toMatch(/Hello Bob friend, meet-ups near\s+your area\./);
    const cleo = mails.get('cleo@example.org')!;
    expect(cleo.html).toContain('Hello Cléo friend, meet-ups near Lyon &amp; Co.');
  });

  it('the demo, run twice, sends nobody a second copy', async () => {
    const ws = await workspace();
    const dir = ws.path('demo');
    const env = { NEWSLETTER_HOST_ID: 'test-host-a' };
    const outbox = path.join(dir, 'outbox');
    const digests = () =>
      Object.fromEntries(readdirSync(outbox).map((f) => [f, sha256Of(path.join(outbox, f))]));

    const first = await runCli(['demo', '--dir', dir], { env, cwd: ws.dir, timeoutMs: 30_000 });
    expect(first.code, describeRun(['demo'], first)).toBe(0);
    // Not `npm run demo`: outside a checkout (a global install) that script does not exist.
    expect(first.stdout).toContain('Run `newsletter demo` again');
    const once = digests();
    expect(Object.keys(once).filter((f) => f.endsWith('.eml'))).toHaveLength(5);

    const second = await runCli(['demo', '--dir', dir], { env, cwd: ws.dir, timeoutMs: 30_000 });
    expect(second.code, describeRun(['demo'], second)).toBe(0);
    // Same files, same bytes: nothing was written again.
    expect(digests()).toEqual(once);
    const runs = await runCli(['runs', '--json'], {
      env: { ...env, NEWSLETTER_DATABASE: path.join(dir, 'newsletter.db') },
    });
    const parsed = JSON.parse(runs.stdout) as { counts: Counts }[];
    expect(parsed.reduce((sum, r) => sum + r.counts.sent, 0)).toBe(5);
    expect(existsSync(path.join(dir, 'newsletter.db'))).toBe(true);
  });
});
