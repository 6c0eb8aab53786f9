/**
 * The configuration issue 4 added: DKIM (NEWSLETTER_DKIM_KEY, _SELECTOR, _DOMAIN), token key
 * rotation (NEWSLETTER_SECRET_PREVIOUS, _UNTIL), NEWSLETTER_REPLY_TO and
 * NEWSLETTER_SOFT_BOUNCE_LIMIT. Every problem at once; the key itself never in a message.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, redactor, unsubscribeKeys } from '../../src/config.js';
import { ConfigError } from '../../src/domain/errors.js';
import { createUnsubscribeToken, verifyUnsubscribeToken } from '../../src/render/unsubscribe-token.js';

let dir: string;
let rsaPem: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'newsletter-config-dkim-'));
  rsaPem = generateKeyPairSync('rsa', { modulusLength: 2048 })
    .privateKey.export({ type: 'pkcs8', format: 'pem' })
    .toString();
  writeFileSync(path.join(dir, 'dkim.pem'), rsaPem);
  writeFileSync(path.join(dir, 'not-a-key.pem'), 'SECRETMARKER-this-is-not-a-key-0123456789\n');
  writeFileSync(
    path.join(dir, 'ed25519.pem'),
    generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  );
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const load = (env: Record<string, string>) => loadConfig({ cwd: dir, env, envFile: null });

function problems(env: Record<string, string>): string {
  try {
    load(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return [(error as ConfigError).message, ...(error as ConfigError).details].join('\n');
  }
  throw new Error('expected a ConfigError');
}

describe('DKIM', () => {
  it('reads the key, relative to the working folder; the domain defaults to each From', () => {
    const config = load({ NEWSLETTER_DKIM_KEY: 'dkim.pem', NEWSLETTER_DKIM_SELECTOR: 'news2026' });
    expect(config.dkim).toEqual({
      keyPath: path.join(dir, 'dkim.pem'),
      privateKey: rsaPem,
      selector: 'news2026',
      domain: null,
    });
    expect(
      load({
        NEWSLETTER_DKIM_KEY: path.join(dir, 'dkim.pem'),
        NEWSLETTER_DKIM_SELECTOR: 's1',
        NEWSLETTER_DKIM_DOMAIN: 'Mail.Example.ORG',
      }).dkim?.domain,
    ).toBe('mail.example.org');
    expect(load({}).dkim).toBeNull();
  });

  it('reports every problem at once, naming the path and never the contents', () => {
    const text = problems({
      NEWSLETTER_DKIM_KEY: 'not-a-key.pem',
      NEWSLETTER_DKIM_DOMAIN: 'not a domain',
      NEWSLETTER_SECRET: 'short',
    });
    expect(text).toContain('4 problems'); // the short NEWSLETTER_SECRET too
    expect(text).toContain('NEWSLETTER_DKIM_SELECTOR is not set');
    expect(text).toContain('NEWSLETTER_DKIM_DOMAIN "not a domain" is not a domain name');
    expect(text).toContain(`NEWSLETTER_DKIM_KEY ${path.join(dir, 'not-a-key.pem')} is not a PEM private key`);
    expect(text).not.toContain('SECRETMARKER');
  });

  it('refuses a missing file, a key that is not RSA, and a selector or domain without a key', () => {
    expect(problems({ NEWSLETTER_DKIM_KEY: 'missing.pem', NEWSLETTER_DKIM_SELECTOR: 's' })).toContain(
      'missing.pem does not exist; generate a key with `openssl genrsa',
    );
    expect(problems({ NEWSLETTER_DKIM_KEY: 'ed25519.pem', NEWSLETTER_DKIM_SELECTOR: 's' })).toContain(
      'is a ed25519 key; DKIM signing here needs an RSA key',
    );
    expect(problems({ NEWSLETTER_DKIM_SELECTOR: 's' })).toContain('without NEWSLETTER_DKIM_KEY');
    expect(
      problems({ NEWSLETTER_DKIM_KEY: 'dkim.pem', NEWSLETTER_DKIM_SELECTOR: 'bad_selector!' }),
    ).toContain('is not a DNS label');
  });

  it('the redactor masks the key, whole and line by line', () => {
    const config = load({ NEWSLETTER_DKIM_KEY: 'dkim.pem', NEWSLETTER_DKIM_SELECTOR: 's' });
    const redact = redactor(config);
    const line = rsaPem.split('\n')[3]!;
    expect(redact(`oops: ${rsaPem}`)).not.toContain(line);
    expect(redact(`a piece: ${line}`)).toBe('a piece: ***');
  });
});

describe('unsubscribe key rotation', () => {
  const current = 'the-current-secret-0123456789';
  const previous = 'the-previous-secret-abcdefghij';

  it('the previous key is accepted while set, or until NEWSLETTER_SECRET_PREVIOUS_UNTIL', () => {
    const open = load({ NEWSLETTER_SECRET: current, NEWSLETTER_SECRET_PREVIOUS: previous });
    expect(unsubscribeKeys(open, Date.now())).toEqual([current, previous]);
    const dated = load({
      NEWSLETTER_SECRET: current,
      NEWSLETTER_SECRET_PREVIOUS: previous,
      NEWSLETTER_SECRET_PREVIOUS_UNTIL: '2026-12-31T12:00Z',
    });
    const until = Date.parse('2026-12-31T12:00Z');
    expect(dated.secretPreviousUntil).toBe(until);
    expect(unsubscribeKeys(dated, until - 1)).toEqual([current, previous]);
    expect(unsubscribeKeys(dated, until)).toEqual([current]);
    expect(unsubscribeKeys(load({}), Date.now())).toEqual([]);

    const old = createUnsubscribeToken(previous, { subscriberId: 5, newsletterId: 9 });
    expect(verifyUnsubscribeToken(unsubscribeKeys(dated, until - 1), old)).toEqual({
      kind: 'subscriber',
      subscriberId: 5,
      newsletterId: 9,
      scope: 'lists',
    });
    expect(verifyUnsubscribeToken(unsubscribeKeys(dated, until), old)).toBeNull();
    expect(verifyUnsubscribeToken([], old)).toBeNull();
    expect(verifyUnsubscribeToken(['', previous], old)).not.toBeNull();
  });

  it('refuses a rotation that cannot be what was meant', () => {
    expect(problems({ NEWSLETTER_SECRET_PREVIOUS: previous })).toContain('without NEWSLETTER_SECRET');
    expect(problems({ NEWSLETTER_SECRET: current, NEWSLETTER_SECRET_PREVIOUS: current })).toContain(
      'the same as NEWSLETTER_SECRET',
    );
    expect(
      problems({
        NEWSLETTER_SECRET: current,
        NEWSLETTER_SECRET_PREVIOUS: previous,
        NEWSLETTER_SECRET_PREVIOUS_UNTIL: '+30d',
      }),
    ).toContain('is not a date');
    expect(
      problems({ NEWSLETTER_SECRET: current, NEWSLETTER_SECRET_PREVIOUS_UNTIL: '2027-01-01' }),
    ).toContain('without NEWSLETTER_SECRET_PREVIOUS');
    const text = problems({ NEWSLETTER_SECRET: current, NEWSLETTER_SECRET_PREVIOUS: 'short-one' });
    expect(text).toContain('NEWSLETTER_SECRET_PREVIOUS is shorter than 16 characters');
    expect(text).not.toContain('short-one');
  });

  it('the redactor masks the previous key too', () => {
    const redact = redactor(load({ NEWSLETTER_SECRET: current, NEWSLETTER_SECRET_PREVIOUS: previous }));
    expect(redact(`${current} ${previous}`)).toBe('*** ***');
  });
});

describe('Reply-To and the soft bounce limit', () => {
  it('reads them, with 3 soft bounces by default', () => {
    expect(load({ NEWSLETTER_REPLY_TO: 'Help <help@example.org>' }).replyTo).toBe('Help <help@example.org>');
    expect(load({}).replyTo).toBeNull();
    expect(load({}).softBounceLimit).toBe(3);
    expect(load({ NEWSLETTER_SOFT_BOUNCE_LIMIT: '5' }).softBounceLimit).toBe(5);
    expect(problems({ NEWSLETTER_SOFT_BOUNCE_LIMIT: '0' })).toContain('NEWSLETTER_SOFT_BOUNCE_LIMIT');
    expect(problems({ NEWSLETTER_REPLY_TO: 'nobody' })).toContain(
      `NEWSLETTER_REPLY_TO is not a usable address: "nobody" has no '@'`,
    );
    expect(problems({ NEWSLETTER_REPLY_TO: 'help@' })).toContain(
      `NEWSLETTER_REPLY_TO is not a usable address: "help@" has nothing after the '@'`,
    );
  });
});
