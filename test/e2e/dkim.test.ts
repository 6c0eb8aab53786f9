/**
 * DKIM through the built CLI: NEWSLETTER_DKIM_* reaches every transport that send-due and
 * test-send create, and what the SMTP server received verifies with mailauth (the public key
 * from a DNS resolver stub). Also the structure of those messages, and NEWSLETTER_REPLY_TO.
 */
import path from 'node:path';
import { simpleParser } from 'mailparser';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, describeRun, makeWorkspace, type Workspace } from '../helpers/cli.js';
import {
  headerCounts,
  makeDkimKey,
  mimeLeaves,
  type TestDkimKey,
  verifyDkim,
} from '../helpers/mail-checks.js';
import { type SmtpSink, startSmtpSink } from '../helpers/smtp-sink.js';

const cleanups: Array<() => Promise<void>> = [];
let key: TestDkimKey;

beforeAll(() => {
  assertBuilt();
  key = makeDkimKey();
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(count: number): Promise<{ ws: Workspace; smtp: SmtpSink; env: Record<string, string> }> {
  const ws = await makeWorkspace('newsletter-dkim-');
  cleanups.push(() => ws.cleanup());
  const smtp = await startSmtpSink();
  cleanups.push(() => smtp.close());
  key.write(ws.path('dkim.pem'));
  await ws.ok(['init']);
  const { file } = await ws.writeCsv(count);
  await ws.ok(['recipients', 'import', file, '--list', 'readers']);
  const env = {
    NEWSLETTER_TRANSPORT: smtp.url,
    NEWSLETTER_DKIM_KEY: 'dkim.pem',
    NEWSLETTER_DKIM_SELECTOR: 'news2026',
    NEWSLETTER_REPLY_TO: 'Example Help <help@example.org>',
  };
  return { ws, smtp, env };
}

async function create(
  ws: Workspace,
  env: Record<string, string>,
  at: string[] = ['--at', 'now'],
): Promise<number> {
  const template = path.join(ws.copyTemplates(), 'welcome.mjml');
  return (
    await ws.json<{ id: number }>(
      ['create', '--subject', 'Hello {{name}}', '--template', template, '--list', 'readers', '--json', ...at],
      { env },
    )
  ).id;
}

describe('DKIM from the configuration', () => {
  it('send-due signs every message; mailauth verifies each, covering both List-Unsubscribe headers', async () => {
    const { ws, smtp, env } = await setup(4);
    await create(ws, env);
    const run = await ws.run(['send-due'], { env });
    expect(run, describeRun(['send-due'], run)).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(smtp.messages).toHaveLength(4);

    // The From is news@example.org (the workspace's NEWSLETTER_FROM): d= is its domain.
    const resolver = key.resolver('news2026', 'example.org');
    for (const received of smtp.messages) {
      const check = await verifyDkim(received.raw, resolver);
      expect(check, received.to[0]).toMatchObject({
        result: 'pass',
        signingDomain: 'example.org',
        signatures: 1,
      });
      expect(check.signedHeaders).toEqual(
        expect.arrayContaining(['list-unsubscribe', 'list-unsubscribe-post', 'reply-to']),
      );

      // Structure: one text part, one HTML part; every header once.
      expect(await mimeLeaves(received.raw)).toEqual(['text/plain', 'text/html']);
      const counts = await headerCounts(received.raw);
      for (const name of [
        'message-id',
        'date',
        'from',
        'to',
        'subject',
        'reply-to',
        'list-unsubscribe',
        'list-unsubscribe-post',
        'list-id',
      ]) {
        expect(counts.get(name), `${received.to[0]}: ${name}`).toBe(1);
      }
      const parsed = await simpleParser(received.raw);
      expect(parsed.replyTo?.value).toEqual([{ name: 'Example Help', address: 'help@example.org' }]);
      expect(parsed.from?.value).toEqual([{ name: 'Example News', address: 'news@example.org' }]);
      expect(parsed.messageId).toBe(received.messageId);
      expect(parsed.messageId).toMatch(/^<n1\.[0-9a-f]{32}@example\.org>$/);
    }
  });

  it('test-send signs too', async () => {
    const { ws, smtp, env } = await setup(1);
    const id = await create(ws, env, []);
    const sent = await ws.run(['test-send', String(id), '--to', 'me@example.net'], { env });
    expect(sent, describeRun(['test-send'], sent)).toMatchObject({ code: 0 });
    expect(smtp.messages).toHaveLength(1);
    expect(await verifyDkim(smtp.messages[0]!.raw, key.resolver('news2026', 'example.org'))).toMatchObject({
      result: 'pass',
    });
  });

  it('NEWSLETTER_DKIM_DOMAIN overrides the From domain', async () => {
    const { ws, smtp, env } = await setup(1);
    const withDomain = { ...env, NEWSLETTER_DKIM_DOMAIN: 'mail.example.org' };
    await create(ws, withDomain);
    await ws.ok(['send-due'], { env: withDomain });
    expect(
      await verifyDkim(smtp.messages[0]!.raw, key.resolver('news2026', 'mail.example.org')),
    ).toMatchObject({
      result: 'pass',
      signingDomain: 'mail.example.org',
    });
  });

  it('a bad key stops every command before any work, and never shows the file', async () => {
    const { ws, smtp, env } = await setup(2);
    await create(ws, env);
    await ws.write('wrong.pem', 'SECRETMARKER-not-a-key-at-all-0123456789\n');
    for (const bad of [
      { NEWSLETTER_DKIM_KEY: 'wrong.pem' },
      { NEWSLETTER_DKIM_KEY: 'missing.pem' },
      { NEWSLETTER_DKIM_SELECTOR: '' },
    ]) {
      const run = await ws.run(['send-due', '--verbose'], { env: { ...env, ...bad } });
      expect(run.code, describeRun(['send-due'], run)).toBe(3);
      expect(run.stdout + run.stderr).not.toContain('SECRETMARKER');
      expect(run.stdout + run.stderr).not.toContain(key.privateKey.split('\n')[2]!);
    }
    expect(smtp.messages).toHaveLength(0);
    const shown = await ws.json<{ counts: { pending: number } }>(['show', '1', '--json'], { env });
    expect(shown.counts.pending).toBe(2);
  });
});
