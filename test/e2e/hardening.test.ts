/**
 * Hostile input through the built CLI, checked where it would do harm: at the SMTP server (what
 * it saw on the wire and in the message) and in the HTML a mail client would render. A real
 * SQLite file, a real SMTP server, mailparser to read the messages back.
 */
import { symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { simpleParser } from 'mailparser';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { assertBuilt, describeRun, makeWorkspace, type Workspace } from '../helpers/cli.js';
import { headerCounts } from '../helpers/mail-checks.js';
import { type SmtpSink, type SmtpSinkOptions, startSmtpSink } from '../helpers/smtp-sink.js';

const cleanups: Array<() => Promise<void>> = [];

beforeAll(() => {
  assertBuilt();
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function workspace(): Promise<Workspace> {
  const ws = await makeWorkspace('newsletter-hardening-');
  cleanups.push(() => ws.cleanup());
  await ws.ok(['init']);
  return ws;
}

async function sink(options: SmtpSinkOptions = {}): Promise<SmtpSink> {
  const started = await startSmtpSink(options);
  cleanups.push(() => started.close());
  return started;
}

async function create(ws: Workspace, subject: string, template: string, extra: string[] = []) {
  return ws.run([
    'create',
    '--subject',
    subject,
    '--template',
    template,
    '--list',
    'readers',
    '--json',
    ...extra,
  ]);
}

describe('header injection', () => {
  it('CR, LF, NUL and U+2028 in a name or field never make a header or a recipient: one recipient each, no Bcc', async () => {
    const ws = await workspace();
    const smtp = await sink();
    // A field keeps its line breaks through the CSV import (a name does not: it is collapsed).
    await ws.write(
      'readers.csv',
      'email,name,city\nann@example.net,Ann,"Leith\r\nBcc: evil@example.org"\nbob@example.net,Bob,Perth\n',
    );
    await ws.ok(['recipients', 'import', 'readers.csv', '--list', 'readers']);
    // A name written by another program straight into the database (it shares a PostgreSQL one,
    // say), through the store itself: the CLI would have refused it.
    const store = SqliteStore.open(ws.db, { create: false, readonly: false, busyTimeoutMs: 5000 });
    await store.addSubscriber(
      {
        email: 'mal@example.net',
        address: 'mal@example.net',
        name: 'Mallory\r\nBcc: evil@example.org\nTo: evil2@example.org\u2028X-Evil: 1\0',
        fields: { city: 'Nowhere\nCc: evil3@example.org' },
      },
      ['readers'],
      Date.now(),
    );
    await store.close();

    const template = path.join(ws.copyTemplates(), 'welcome.mjml');
    const created = await create(ws, 'Hello {{name}} from {{city}}', template, ['--at', 'now']);
    expect(created, describeRun(['create'], created)).toMatchObject({ code: 0 });
    const run = await ws.run(['send-due'], { env: { NEWSLETTER_TRANSPORT: smtp.url } });
    expect(run, describeRun(['send-due'], run)).toMatchObject({ code: 0 });

    // Three connections: the messages may arrive in any order; each one exactly once, to one address.
    expect(smtp.messages.map((m) => m.to).sort()).toEqual([
      ['ann@example.net'],
      ['bob@example.net'],
      ['mal@example.net'],
    ]);
    expect(smtp.envelopeCommands.filter((line) => line.startsWith('RCPT')).sort()).toEqual([
      'RCPT TO:<ann@example.net>',
      'RCPT TO:<bob@example.net>',
      'RCPT TO:<mal@example.net>',
    ]);
    for (const received of smtp.messages) {
      // The header section only: the text part may well show the name's words on a line of their own.
      const raw = received.raw.toString('latin1');
      const header = raw.slice(0, raw.indexOf('\r\n\r\n'));
      expect(header).not.toMatch(/^(Bcc|Cc|X-Evil):/im);
      const counts = await headerCounts(received.raw);
      expect(counts.get('to')).toBe(1);
      expect(counts.has('bcc') || counts.has('cc') || counts.has('x-evil')).toBe(false);
      const parsed = await simpleParser(received.raw);
      expect(parsed.to && !Array.isArray(parsed.to) ? parsed.to.value.map((a) => a.address) : []).toEqual(
        received.to,
      );
      expect(parsed.subject).not.toMatch(/[\r\n\0\u2028\u2029]/);
    }
    const byAddress = (address: string) => {
      const message = smtp.messages.find((m) => m.to.includes(address));
      if (!message) throw new Error(`no message to ${address}`);
      return simpleParser(message.raw);
    };
    const [ann, mal] = await Promise.all([byAddress('ann@example.net'), byAddress('mal@example.net')]);
    expect(ann?.subject).toBe('Hello Ann from LeithBcc: evil@example.org');
    expect(mal?.subject).toBe(
      'Hello MalloryBcc: evil@example.orgTo: evil2@example.orgX-Evil: 1 from NowhereCc: evil3@example.org',
    );
  });

  it('create refuses CR, LF and U+2028 in the subject and the From; the configuration refuses them in NEWSLETTER_FROM and NEWSLETTER_REPLY_TO', async () => {
    const ws = await workspace();
    await ws.write('readers.csv', 'email,name\nann@example.net,Ann\n');
    await ws.ok(['recipients', 'import', 'readers.csv', '--list', 'readers']);
    const template = path.join(ws.copyTemplates(), 'welcome.mjml');
    for (const subject of [
      'Hi\nBcc: x@example.org',
      'Hi\rthere',
      'Hi\u2028Bcc: x@example.org',
      'Hi\u2029there',
    ]) {
      const result = await create(ws, subject, template);
      expect(result.code, JSON.stringify(subject)).toBe(4);
      expect(result.stderr).toMatch(/subject.*line break/i);
    }
    for (const from of ['News <n@example.org>\r\nBcc: x@example.org', 'News\u2028 <n@example.org>']) {
      const result = await create(ws, 'Hello', template, ['--from', from]);
      expect(result.code, JSON.stringify(from)).toBe(4);
      expect(result.stderr).toContain('--from');
    }
    const config = await ws.run(['list'], {
      env: {
        NEWSLETTER_FROM: 'News <n@example.org>\u2028Bcc: x@example.org',
        NEWSLETTER_REPLY_TO: 'a@b.org\nBcc: c@d.org',
      },
    });
    expect(config.code).toBe(3);
    expect(config.stderr).toContain('NEWSLETTER_FROM contains a line break');
    expect(config.stderr).toContain('NEWSLETTER_REPLY_TO contains a line break');
    expect((await ws.json<unknown[]>(['list', '--json'])).length).toBe(0);
  });
});

describe('HTML', () => {
  it('fields are escaped in the HTML; a field that starts an href cannot become javascript:', async () => {
    const ws = await workspace();
    const smtp = await sink();
    await ws.write(
      'readers.csv',
      [
        'email,name,website',
        'ann@example.net,"<script>alert(""x"")</script> & \'Ann\'","javascript:alert(document.cookie)"',
        'bob@example.net,Bob,"  JaVa\tScRiPt:alert(1)"',
        'cy@example.net,Cy,"data:text/html;base64,PHNjcmlwdD4="',
        'dee@example.net,Dee,https://dee.example.net/?a=1&b=2',
      ].join('\n'),
    );
    await ws.ok(['recipients', 'import', 'readers.csv', '--list', 'readers']);
    const templates = ws.copyTemplates();
    await writeFile(
      path.join(templates, 'links.mjml'),
      `<mjml><mj-body><mj-section><mj-column>
        <mj-text>Hello {{name}}, <a href="{{website}}">your site</a> <span title="{{name}}">hover</span></mj-text>
      </mj-column></mj-section><mj-include path="./partials/footer.mjml" /></mj-body></mjml>`,
    );
    const created = await create(ws, 'Links for {{name}}', path.join(templates, 'links.mjml'), [
      '--at',
      'now',
    ]);
    expect(created, describeRun(['create'], created)).toMatchObject({ code: 0 });
    await ws.ok(['send-due'], { env: { NEWSLETTER_TRANSPORT: smtp.url } });

    const html = new Map<string, string>();
    for (const message of smtp.messages)
      html.set(message.to[0]!, (await simpleParser(message.raw)).html || '');
    const ann = html.get('ann@example.net')!;
    expect(ann).toContain('Hello &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;Ann&#39;,');
    expect(ann).toContain('title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;Ann&#39;"');
    expect(ann).not.toContain('<script>');
    expect(ann).toContain('href="unsafe:javascript:alert(document.cookie)"');
    // The CSV import trims the cell; the tab inside stays, and browsers would ignore it: neutralised.
    expect(html.get('bob@example.net')).toContain('href="unsafe:JaVa\tScRiPt:alert(1)"');
    expect(html.get('cy@example.net')).toContain('href="unsafe:data:text/html;base64,PHNjcmlwdD4="');
    expect(html.get('dee@example.net')).toContain('href="https://dee.example.net/?a=1&amp;b=2"');
    for (const [to, body] of html) {
      expect(body, to).not.toMatch(/href="\s*(javascript|data|vbscript):/i);
    }
  });

  it('mj-include cannot leave the templates folder: ../, absolute, percent-encoded and symlinked paths are refused at create', async () => {
    const ws = await workspace();
    await ws.write('readers.csv', 'email,name\nann@example.net,Ann\n');
    await ws.ok(['recipients', 'import', 'readers.csv', '--list', 'readers']);
    const templates = ws.copyTemplates();
    await ws.write('secret.mjml', '<mj-text>outside the templates folder</mj-text>');
    await symlink(ws.path('secret.mjml'), path.join(templates, 'partials', 'link.mjml'));
    const cases: [string, string, RegExp][] = [
      ['dotdot', '../secret.mjml', /leaves the templates folder/],
      ['absolute', ws.path('secret.mjml'), /outside the templates folder/],
      ['encoded', '%2e%2e/secret.mjml', /percent-encoded/],
      ['symlink', './partials/link.mjml', /symlink that leaves the templates folder/],
    ];
    for (const [name, include, problem] of cases) {
      const file = path.join(templates, `${name}.mjml`);
      await writeFile(
        file,
        `<mjml><mj-body><mj-include path="${include}" /><mj-include path="./partials/footer.mjml" /></mj-body></mjml>`,
      );
      const result = await create(ws, 'Hi', file);
      expect(result.code, `${name}: ${result.stderr}`).toBe(4);
      expect(result.stderr, name).toMatch(problem);
      expect(result.stderr, name).not.toContain('outside the templates folder</mj-text>');
    }
    expect(await ws.json<unknown[]>(['list', '--json'])).toEqual([]);
  });
});

describe('addresses', () => {
  it('RFC 5321 limits and one mailbox per row at import; IDN as A-labels on the wire; UTF-8 local parts only over SMTPUTF8', async () => {
    const ws = await workspace();
    const local64 = 'a'.repeat(64);
    const label63 = 'b'.repeat(63);
    await ws.write(
      'readers.csv',
      [
        'email,name',
        `${local64}@example.net,Longest local part`,
        `${'a'.repeat(65)}@example.net,Too long local part`,
        `x@${'c'.repeat(64)}.example.net,Too long label`,
        `${'x'.repeat(10)}@${[label63, label63, label63, 'd'.repeat(56)].join('.')}.net,Address over 254`,
        '"a@example.net, b@example.net",Two in one cell',
        'info@bücher.de,IDN',
        'jörg@example.net,UTF-8 local part',
      ].join('\n'),
    );
    const refused = await ws.run(['recipients', 'import', 'readers.csv', '--list', 'readers']);
    expect(refused.code).toBe(4);
    for (const line of [3, 4, 5, 6]) expect(refused.stderr).toContain(`line ${line}:`);
    expect(refused.stderr).toMatch(/local part .* 65 octets; the limit is 64/);
    expect(refused.stderr).toMatch(/domain part of 64 octets; the limit is 63/);
    expect(refused.stderr).toMatch(/the limit is (254|255)/);
    expect(refused.stderr).toMatch(/more than one address/);
    await ws.ok(['recipients', 'import', 'readers.csv', '--list', 'readers', '--skip-invalid']);

    // A server without SMTPUTF8: the UTF-8 local part fails with the reason, the others are sent.
    const smtp = await sink({ smtputf8: false });
    const template = path.join(ws.copyTemplates(), 'welcome.mjml');
    await create(ws, 'Hello', template, ['--at', 'now']);
    const run = await ws.run(['send-due'], { env: { NEWSLETTER_TRANSPORT: smtp.url } });
    expect(run.code, describeRun(['send-due'], run)).toBe(8);
    expect(smtp.envelopeCommands.filter((line) => line.startsWith('RCPT')).sort()).toEqual([
      `RCPT TO:<${local64}@example.net>`,
      'RCPT TO:<info@xn--bcher-kva.de>',
    ]);
    const shown = await ws.json<{
      counts: { sent: number; failed: number };
      attention: { address: string; reply: string }[];
    }>(['show', '1', '--json']);
    expect(shown.counts).toMatchObject({ sent: 2, failed: 1 });
    expect(shown.attention).toEqual([
      expect.objectContaining({
        address: 'jörg@example.net',
        reply: expect.stringMatching(/non-ASCII local part.*does not offer SMTPUTF8/),
      }),
    ]);
  });
});
