/**
 * NEWSLETTER_IMAP and its companions (src/imap-config.ts): the URL's parts, percent-decoded; the
 * TLS policy (imaps: TLS; imap: STARTTLS required, plain on loopback only); every problem named
 * with its variable and never with the URL, which holds the password; and the password masked by
 * the configuration's redactor in every spelling.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig, redactor } from '../../src/config.js';
import { ConfigError } from '../../src/domain/errors.js';
import { parseImapUrl } from '../../src/imap-config.js';

const dir = mkdtempSync(path.join(tmpdir(), 'newsletter-imap-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const load = (env: Record<string, string>) => loadConfig({ cwd: dir, env, envFile: null });

function problems(env: Record<string, string>): string {
  try {
    load(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return [(error as ConfigError).message, ...(error as ConfigError).details].join('\n');
  }
  throw new Error('expected a configuration error');
}

describe('parseImapUrl', () => {
  it('decodes the user, the password and the folder; defaults the port and INBOX', () => {
    expect(parseImapUrl('imaps://bounces%40example.org:p%40ss%2Fw%3Ard%25@imap.example.org')).toEqual({
      host: 'imap.example.org',
      port: 993,
      tls: 'implicit',
      user: 'bounces@example.org',
      password: 'p@ss/w:rd%',
      passwordAsWritten: 'p%40ss%2Fw%3Ard%25',
      mailbox: 'INBOX',
      display: 'imaps://imap.example.org:993/INBOX',
    });
    expect(parseImapUrl('imap://u:p@mail.example.org:1143/INBOX%2FBounces')).toMatchObject({
      port: 1143,
      tls: 'starttls',
      mailbox: 'INBOX/Bounces',
    });
  });

  it('imap:// stays plain only to this host', () => {
    for (const host of ['127.0.0.1', 'localhost', '[::1]', '127.1.2.3']) {
      expect(parseImapUrl(`imap://u:p@${host}/INBOX`)).toMatchObject({ tls: 'none', port: 143 });
    }
    for (const host of ['10.0.0.1', 'imap.example.org', '[2001:db8::1]']) {
      expect(parseImapUrl(`imap://u:p@${host}/INBOX`)).toMatchObject({ tls: 'starttls' });
    }
  });

  it('says what is wrong', () => {
    expect(parseImapUrl('pop3://u:p@host/INBOX')).toEqual({
      problem: 'must start with imaps:// (or imap:// with STARTTLS), not pop3://',
    });
    expect(parseImapUrl('imaps://host/INBOX')).toMatchObject({
      problem: expect.stringMatching(/needs a user and a password/),
    });
    expect(parseImapUrl('imaps://u:p%zz@host/INBOX')).toMatchObject({
      problem: expect.stringMatching(/percent-encoding/),
    });
    expect(parseImapUrl('imaps://u:p@host/INBOX?x=1')).toMatchObject({
      problem: expect.stringMatching(/%3F/),
    });
    expect(parseImapUrl('not a url')).toEqual({ problem: 'is not a URL' });
  });
});

describe('the configuration', () => {
  it('reads NEWSLETTER_IMAP, its folders and its CA', () => {
    const ca = path.join(dir, 'ca.pem');
    writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    const config = load({
      NEWSLETTER_IMAP: 'imaps://u:secret-pass@imap.example.org/Bounces',
      NEWSLETTER_IMAP_DONE_FOLDER: 'Bounces/Done',
      NEWSLETTER_IMAP_UNMATCHED_FOLDER: 'Bounces/Other',
      NEWSLETTER_IMAP_CA: 'ca.pem',
    });
    expect(config.imap).toMatchObject({
      mailbox: 'Bounces',
      doneFolder: 'Bounces/Done',
      unmatchedFolder: 'Bounces/Other',
      ca: { path: ca },
    });
    expect(load({}).imap).toBeNull();
    expect(load({ NEWSLETTER_IMAP: 'imaps://u:p@h/INBOX' }).imap).toMatchObject({
      doneFolder: 'newsletter-processed',
      unmatchedFolder: 'newsletter-unmatched',
      ca: null,
    });
  });

  it('a broken URL is a problem that names the variable, never the password', () => {
    const text = problems({ NEWSLETTER_IMAP: 'imaps://u:hunter2-secret%zz@imap.example.org/INBOX' });
    expect(text).toMatch(/NEWSLETTER_IMAP has a user or password that is not valid percent-encoding/);
    expect(text).not.toContain('hunter2');
    expect(
      problems({ NEWSLETTER_IMAP: 'imaps://u:p@h/INBOX', NEWSLETTER_IMAP_DONE_FOLDER: 'INBOX' }),
    ).toMatch(/must differ from the folder NEWSLETTER_IMAP reads/);
    expect(problems({ NEWSLETTER_IMAP_CA: 'missing.pem' })).toMatch(
      /NEWSLETTER_IMAP_CA .*missing\.pem does not exist/,
    );
  });

  it('the redactor masks the IMAP password as written, decoded and re-encoded', () => {
    const config = load({ NEWSLETTER_IMAP: 'imaps://u:p%40ss%2Fw0rd@imap.example.org/INBOX' });
    const redact = redactor(config);
    for (const form of [
      'p@ss/w0rd',
      'p%40ss%2Fw0rd',
      'p%40ss%2fw0rd',
      Buffer.from('p@ss/w0rd').toString('base64'),
    ]) {
      expect(redact(`the server said ${form} was wrong`)).not.toContain(form);
    }
  });
});
