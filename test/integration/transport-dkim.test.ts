/**
 * DKIM and message structure, through the SMTP transport to a real SMTP server: the bytes the
 * server received are verified by mailauth (public key from a DNS resolver stub) and taken apart
 * by mailparser. The message is the real thing: templates/welcome.mjml built and personalised.
 */
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { messageIdFor } from '../../src/domain/message-id.js';
import { parseTransport } from '../../src/domain/transport-spec.js';
import type { VerifiedBody } from '../../src/domain/types.js';
import type { OutgoingMessage, Transport } from '../../src/engine/ports.js';
import { buildBody } from '../../src/render/build.js';
import { preparePersonaliser } from '../../src/render/personalise.js';
import { DKIM_SIGNED_FIELDS } from '../../src/transport/compose.js';
import { createTransport } from '../../src/transport/index.js';
import { TEMPLATES } from '../helpers/cli.js';
import {
  headerCounts,
  makeDkimKey,
  mimeLeaves,
  type TestDkimKey,
  verifyDkim,
} from '../helpers/mail-checks.js';
import { type SmtpSink, startSmtpSink } from '../helpers/smtp-sink.js';
import { newsletterFixture } from '../helpers/store-fixtures.js';

const open: Array<{ close(): Promise<void> }> = [];
let key: TestDkimKey;
let body: VerifiedBody;

beforeAll(async () => {
  key = makeDkimKey();
  body = await buildBody(
    newsletterFixture({
      id: 7,
      subject: 'News for {{name}}',
      templatePath: path.join(TEMPLATES, 'welcome.mjml'),
      from: '"Example News" <news@example.org>',
      lists: ['monthly news'],
    }),
    { templatesRoot: TEMPLATES, knownFields: [], defaultFrom: null },
  );
}, 60_000);

afterEach(async () => {
  for (const resource of open.splice(0)) await resource.close();
});

function message(to: string, replyTo: string | null = null): OutgoingMessage {
  const personalise = preparePersonaliser(body, {
    newsletterId: 7,
    baseUrl: 'https://news.example.org',
    secret: 'a-secret-for-the-dkim-test-0123',
    listNames: ['monthly news'],
    replyTo,
  });
  return personalise({
    deliveryId: 1,
    newsletterId: 7,
    subscriberId: 42,
    email: to,
    address: to,
    name: 'Ann',
    fields: {},
    messageId: messageIdFor(null, 7, to, 'example.org'),
    attempts: 0,
  });
}

async function sinkAndTransport(dkim: { selector: string; domain: string | null } | null) {
  const sink: SmtpSink = await startSmtpSink();
  open.push(sink);
  const spec = parseTransport(sink.url);
  if ('error' in spec) throw new Error(spec.error);
  const transport: Transport = await createTransport(spec, {
    timeoutMs: 5_000,
    dkim: dkim && { privateKey: key.privateKey, ...dkim },
  });
  open.unshift(transport);
  return { sink, transport };
}

describe('DKIM, verified by mailauth against the bytes the server received', () => {
  it('passes, signed for the From domain, covering both List-Unsubscribe headers', async () => {
    const { sink, transport } = await sinkAndTransport({ selector: 'news2026', domain: null });
    expect(await transport.send(message('ann@example.net'))).toMatchObject({ kind: 'sent' });
    const raw = sink.messages[0]!.raw;

    const check = await verifyDkim(raw, key.resolver('news2026', 'example.org'));
    expect(check).toMatchObject({
      result: 'pass',
      signingDomain: 'example.org',
      selector: 'news2026',
      signatures: 1,
    });
    expect(check.signedHeaders).toEqual(
      expect.arrayContaining([
        'from',
        'subject',
        'date',
        'message-id',
        'to',
        'list-id',
        'list-unsubscribe',
        'list-unsubscribe-post',
      ]),
    );
  });

  it('signs with NEWSLETTER_DKIM_DOMAIN when set, and fails with any other key', async () => {
    const { sink, transport } = await sinkAndTransport({ selector: 's1', domain: 'mail.example.org' });
    await transport.send(message('bob@example.net'));
    const raw = sink.messages[0]!.raw;
    expect(await verifyDkim(raw, key.resolver('s1', 'mail.example.org'))).toMatchObject({
      result: 'pass',
      signingDomain: 'mail.example.org',
    });
    // The same record name publishing another key: the signature does not verify.
    const other = makeDkimKey(1024);
    expect((await verifyDkim(raw, other.resolver('s1', 'mail.example.org'))).result).toBe('fail');
  });

  it('a changed List-Unsubscribe, List-Unsubscribe-Post, Subject or body breaks the signature', async () => {
    const { sink, transport } = await sinkAndTransport({ selector: 'news2026', domain: null });
    await transport.send(message('cy@example.net'));
    const raw = sink.messages[0]!.raw.toString('latin1');
    const resolver = key.resolver('news2026', 'example.org');
    expect((await verifyDkim(Buffer.from(raw, 'latin1'), resolver)).result).toBe('pass');

    const changes: [string, (text: string) => string][] = [
      ['List-Unsubscribe', (t) => t.replace('https://news.example.org/u/', 'https://evil.example/u/')],
      [
        'List-Unsubscribe-Post',
        (t) => t.replace('List-Unsubscribe-Post: List-Unsubscribe=One-Click', 'List-Unsubscribe-Post: x=y'),
      ],
      ['Subject', (t) => t.replace(/^Subject: .*$/m, 'Subject: Something else')],
      ['body', (t) => t.replace(/Ann/g, 'Eve')],
    ];
    for (const [what, change] of changes) {
      const changed = change(raw);
      expect(changed, what).not.toBe(raw);
      expect((await verifyDkim(Buffer.from(changed, 'latin1'), resolver)).result, what).not.toBe('pass');
    }
  });

  it('without a key nothing is signed', async () => {
    const { sink, transport } = await sinkAndTransport(null);
    await transport.send(message('dee@example.net'));
    expect(sink.messages[0]!.raw.toString('latin1')).not.toMatch(/^DKIM-Signature:/im);
  });

  it('names the fields RFC 8058 needs signed', () => {
    expect(DKIM_SIGNED_FIELDS).toEqual(expect.arrayContaining(['List-Unsubscribe', 'List-Unsubscribe-Post']));
  });
});

describe('structure, read back with mailparser', () => {
  it('one text and one HTML part; Message-ID, Date, From, To, Subject and the list headers exactly once; Reply-To when set', async () => {
    const { sink, transport } = await sinkAndTransport({ selector: 'news2026', domain: null });
    await transport.send(message('eve@example.net', 'Help Desk <help@example.org>'));
    await transport.send(message('fay@example.net'));
    const [withReplyTo, without] = sink.messages;

    for (const received of [withReplyTo!, without!]) {
      expect(await mimeLeaves(received.raw)).toEqual(['text/plain', 'text/html']);
      const counts = await headerCounts(received.raw);
      for (const name of [
        'message-id',
        'date',
        'from',
        'to',
        'subject',
        'mime-version',
        'list-unsubscribe',
        'list-unsubscribe-post',
        'list-id',
        'dkim-signature',
      ]) {
        expect(counts.get(name), name).toBe(1);
      }
      expect(counts.has('bcc')).toBe(false);
    }
    expect((await headerCounts(withReplyTo!.raw)).get('reply-to')).toBe(1);
    expect((await headerCounts(without!.raw)).has('reply-to')).toBe(false);
    const { simpleParser } = await import('mailparser');
    const parsed = await simpleParser(withReplyTo!.raw);
    expect(parsed.replyTo?.value).toEqual([{ name: 'Help Desk', address: 'help@example.org' }]);
    expect(parsed.messageId).toBe(messageIdFor(null, 7, 'eve@example.net', 'example.org'));
    expect(parsed.date?.getTime()).toBeGreaterThan(Date.now() - 60_000);
    expect(parsed.text).toContain('https://news.example.org/u/v2.42.7.');
    expect(parsed.html).toContain('https://news.example.org/u/v2.42.7.');
    expect(parsed.headerLines.find((h) => h.key === 'list-id')?.line).toMatch(
      /^List-Id: <monthly-news\.example\.org>$/i,
    );
    // The Reply-To is signed as well.
    expect(
      (await verifyDkim(withReplyTo!.raw, key.resolver('news2026', 'example.org'))).signedHeaders,
    ).toContain('reply-to');
  });
});
