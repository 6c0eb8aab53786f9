/**
 * src/transport/mime.ts and compose.ts import four of nodemailer's internal modules
 * (lib/mime-funcs, lib/mime-node, lib/addressparser, lib/dkim). They are not its public API and
 * may change in any release, so package.json pins the exact version they were tested with. This
 * test fails when the pin is loosened, when the installed copy is not the pinned one, or when one
 * of the four no longer loads or no longer does what we use it for: upgrade on purpose, run the
 * transport tests, then move the pin and the expected values here together.
 */
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const readJson = (path: string) => JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8'));

describe('nodemailer, whose internals the transport imports', () => {
  it('is pinned to one exact version, and that version is the one installed', () => {
    const pinned: string = readJson('../../package.json').dependencies.nodemailer;
    expect(pinned, 'package.json must pin nodemailer exactly (no ^ or ~)').toMatch(/^\d+\.\d+\.\d+$/);
    expect(readJson('../../node_modules/nodemailer/package.json').version).toBe(pinned);
  });

  it('lib/mime-funcs: encodeWords encodes a phrase as Q encoded words', async () => {
    const { encodeWords } = await import('nodemailer/lib/mime-funcs');
    expect(encodeWords('Grüße aus Köln', 'Q', 52, true)).toBe('=?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=');
  });

  it('lib/mime-funcs: encodeWord encodes even plain ASCII, in words of at most the length asked', async () => {
    const { encodeWord } = await import('nodemailer/lib/mime-funcs');
    expect(encodeWord('a_b c'.repeat(10), 'Q', 52)).toBe(
      '=?UTF-8?Q?a=5Fb_ca=5Fb_ca=5Fb_ca=5Fb_ca=5Fb_ca=5Fb?= =?UTF-8?Q?_ca=5Fb_ca=5Fb_ca=5Fb_ca=5Fb_c?=',
    );
  });

  it('lib/mime-node: encodeHeaderValue encodes text and addresses (domains as A-labels)', async () => {
    const { default: MimeNode } = await import('nodemailer/lib/mime-node');
    expect(MimeNode.encodeHeaderValue('Subject', 'Grüße aus Köln')).toBe(
      '=?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=',
    );
    expect(MimeNode.encodeHeaderValue('From', 'Jürgen <news@bücher.example>')).toBe(
      '=?UTF-8?Q?J=C3=BCrgen?= <news@xn--bcher-kva.example>',
    );
  });

  it('lib/addressparser: flattens a From into its address', async () => {
    const { default: addressparser } = await import('nodemailer/lib/addressparser');
    expect(addressparser('"News, Weekly" <news@example.org>', { flatten: true })).toEqual([
      { address: 'news@example.org', name: 'News, Weekly' },
    ]);
  });

  it('lib/dkim: signs a message as an async iterable of chunks that starts with DKIM-Signature', async () => {
    const { default: DKIM } = await import('nodemailer/lib/dkim');
    const { privateKey } = generateKeyPairSync('rsa', {
      modulusLength: 1024,
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    const signer = new DKIM({
      domainName: 'example.org',
      keySelector: 'news',
      privateKey,
      headerFieldNames: 'From:Subject',
    });
    const chunks: Buffer[] = [];
    for await (const chunk of signer.sign(
      Buffer.from('From: news@example.org\r\nSubject: Hi\r\n\r\nHello\r\n'),
    )) {
      chunks.push(chunk as Buffer);
    }
    const signed = Buffer.concat(chunks).toString('latin1');
    expect(signed.startsWith('DKIM-Signature: ')).toBe(true);
    expect(signed).toMatch(/\bd=example\.org;/);
    expect(signed).toMatch(/\bs=news;/);
    expect(signed.endsWith('From: news@example.org\r\nSubject: Hi\r\n\r\nHello\r\n')).toBe(true);
  });
});
