/**
 * The pure parts of issue 18: VERP tokens, the return path setting, keyed Message-IDs, reading a
 * report's parts, and escaping what a report says before it reaches a terminal.
 */
import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { readReport } from '../../src/bounces/report.js';
import { loadConfig } from '../../src/config.js';
import { returnPathCheck } from '../../src/doctor/return-path.js';
import { messageIdFor } from '../../src/domain/message-id.js';
import { printable } from '../../src/domain/printable.js';
import { parseReturnPath, verpAddress } from '../../src/domain/return-path.js';
import {
  createReturnPathToken,
  createReturnPathTokens,
  parseReturnPathToken,
  tokenMatches,
  tokensIn,
} from '../../src/domain/return-path-token.js';
import { postfixDsn, rfc5965Sample } from '../helpers/dsn.js';

const KEY = 'current-secret-0123456789';
const OLD = 'previous-secret-0123456789';
const ann = { deliveryId: 4242, newsletterId: 7, address: 'ann@example.net' };

describe('return path tokens', () => {
  it('are 27 characters of lower-case base32 after the purpose letter, and name their ledger row', () => {
    const token = createReturnPathToken(KEY, 'bounce', ann);
    expect(token).toMatch(/^b[a-z2-7]{26}$/);
    const parsed = parseReturnPathToken(token);
    expect(parsed).toMatchObject({ purpose: 'bounce', deliveryId: 4242 });
    expect(tokenMatches([KEY], parsed as NonNullable<typeof parsed>, ann)).toBe(true);
    // An MTA that upper-cases (or lower-cases) the local part keeps it valid.
    const upper = parseReturnPathToken(token.toUpperCase());
    expect(tokenMatches([KEY], upper as NonNullable<typeof upper>, ann)).toBe(true);
    expect(createReturnPathToken(KEY, 'bounce', { ...ann, deliveryId: 2 ** 48 - 1 })).toMatch(
      /^b[a-z2-7]{26}$/,
    );
    expect(() => createReturnPathToken(KEY, 'bounce', { ...ann, deliveryId: 2 ** 48 })).toThrow(RangeError);
  });

  it('verify only for the delivery, key and purpose they were made for; the previous key still counts', () => {
    const token = parseReturnPathToken(createReturnPathToken(OLD, 'unsubscribe', ann));
    if (!token) throw new Error('unparsed');
    expect(tokenMatches([KEY, OLD], token, ann)).toBe(true);
    expect(tokenMatches([KEY], token, ann)).toBe(false);
    expect(tokenMatches([KEY, OLD], token, { ...ann, address: 'bob@example.net' })).toBe(false);
    expect(tokenMatches([KEY, OLD], token, { ...ann, newsletterId: 8 })).toBe(false);
    expect(tokenMatches([KEY, OLD], { ...token, purpose: 'bounce' }, ann)).toBe(false);
    expect(tokenMatches([KEY, OLD], { ...token, deliveryId: 4243 }, { ...ann, deliveryId: 4243 })).toBe(
      false,
    );
    expect(tokenMatches([''], token, ann)).toBe(false);
    // One HMAC makes both; the `u` token with its letter turned into `b` is no bounce token.
    const both = createReturnPathTokens(KEY, ann);
    expect(both).toEqual({
      bounce: createReturnPathToken(KEY, 'bounce', ann),
      unsubscribe: createReturnPathToken(KEY, 'unsubscribe', ann),
    });
    const swapped = parseReturnPathToken(`b${both.unsubscribe.slice(1)}`);
    expect(swapped?.purpose).toBe('bounce');
    expect(tokenMatches([KEY], swapped as NonNullable<typeof swapped>, ann)).toBe(false);
  });

  it('refuse anything that is not exactly one of ours in shape, without throwing', () => {
    const good = createReturnPathToken(KEY, 'bounce', ann);
    for (const bad of [
      '',
      'b',
      `x${good.slice(1)}`,
      `${good}a`,
      good.slice(0, -1),
      `${good.slice(0, -1)}1`,
      `b${'8'.repeat(26)}`,
    ])
      expect(parseReturnPathToken(bad)).toBeNull();
    // The last character carries 2 unused bits, which must be zero: `7` (11111) sets them.
    expect(parseReturnPathToken(`${good.slice(0, -1)}7`)).toBeNull();
  });

  it('are found in addresses and header values, each once, in order', () => {
    const b = createReturnPathToken(KEY, 'bounce', ann);
    const u = createReturnPathToken(KEY, 'unsubscribe', ann);
    const found = tokensIn([
      `bounces+${b}@example.org`,
      `"x" <bounces-${u}@example.org>, bounces+${b}@example.org`,
    ]);
    expect(found.map((t) => t.purpose)).toEqual(['bounce', 'unsubscribe']);
    expect(tokensIn([`news+${b}x@example.org`, 'no token here'])).toEqual([]);
  });
});

describe('the return path setting', () => {
  it('takes a bare address and + or -, and says what is wrong otherwise', () => {
    const problems: string[] = [];
    expect(parseReturnPath('Bounces@Example.org', '-', problems)).toEqual({
      address: 'bounces@example.org',
      delimiter: '-',
    });
    expect(parseReturnPath(null, null, problems)).toEqual({ address: null, delimiter: '+' });
    expect(problems).toEqual([]);
    parseReturnPath('bounces+x@example.org', '+', problems);
    parseReturnPath(`${'b'.repeat(40)}@example.org`, null, problems);
    parseReturnPath('not an address', '=', problems);
    expect(problems).toEqual([
      expect.stringContaining('already contains the delimiter "+"'),
      expect.stringContaining('longer than 36 characters'),
      expect.stringContaining('NEWSLETTER_RETURN_PATH_DELIMITER "=" must be +'),
      expect.stringContaining('must be a bare address'),
    ]);
    expect(verpAddress('bounces@example.org', '+', 'btoken')).toBe('bounces+btoken@example.org');
  });
});

describe('keyed Message-IDs', () => {
  it('are deterministic under one key, differ under another, and keep their shape', () => {
    const id = messageIdFor(KEY, 3, 'ann@example.net', 'example.org');
    expect(id).toMatch(/^<n3\.[0-9a-f]{32}@example\.org>$/);
    expect(messageIdFor(KEY, 3, 'ann@example.net', 'example.org')).toBe(id);
    expect(messageIdFor(OLD, 3, 'ann@example.net', 'example.org')).not.toBe(id);
    expect(messageIdFor(KEY, 3, 'bob@example.net', 'example.org')).not.toBe(id);
    expect(messageIdFor(KEY, 4, 'ann@example.net', 'example.org')).not.toBe(id);
  });
});

describe('reading a report', () => {
  it('a Postfix DSN: its recipients, the returned Message-ID and Return-Path, the fields a token may be in', () => {
    const report = readReport(
      Buffer.from(
        postfixDsn({
          messageId: '<dsn@mx>',
          to: 'bounces+bx@example.org',
          extraHeaders: ['Delivered-To: bounces+by@example.org'],
          originalMessageId: '<n1.abc@example.org>',
          returnedReturnPath: 'bounces+bz@example.org',
          recipients: [{ address: 'ann@example.net', action: 'failed', status: '5.1.1' }],
        }),
      ),
    );
    expect(report).toMatchObject({
      id: '<dsn@mx>',
      kind: 'dsn',
      recipientFields: ['bounces+by@example.org', 'bounces+bx@example.org'],
      returnedMessageIds: ['<n1.abc@example.org>'],
      returnedReturnPaths: ['<bounces+bz@example.org>'],
    });
    expect(report.dsnRecipients).toEqual([
      { address: 'ann@example.net', action: 'failed', status: '5.1.1', diagnostic: '' },
    ]);
  });

  it("RFC 5965's sample: a feedback report of type abuse about user@example.com", () => {
    const report = readReport(Buffer.from(rfc5965Sample()));
    expect(report.kind).toBe('arf');
    expect(report.feedback).toEqual({
      type: 'abuse',
      originalRcptTo: ['user@example.com'],
      originalMailFrom: 'somespammer@example.net',
      userAgent: 'SomeGenerator/1.0',
    });
    expect(report.returnedMessageIds).toEqual(['8787KJKJ3K4J3K4J3K4J3.mail@example.net']);
    expect(report.id).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('a base64-encoded status part, and mail that is no report at all', () => {
    const status = Buffer.from(
      'Reporting-MTA: dns; mx\n\nFinal-Recipient: rfc822; bob@example.net\nAction: delayed\nStatus: 4.4.7\n',
    ).toString('base64');
    const dsn = [
      'To: bounces@example.org',
      'Content-Type: multipart/report; report-type=delivery-status; boundary=b',
      '',
      '--b',
      'Content-Type: message/delivery-status',
      'Content-Transfer-Encoding: base64',
      '',
      status,
      '--b--',
      '',
    ].join('\r\n');
    expect(readReport(Buffer.from(dsn)).dsnRecipients).toEqual([
      { address: 'bob@example.net', action: 'delayed', status: '4.4.7', diagnostic: '' },
    ]);
    expect(readReport(Buffer.from('To: x@example.org\n\nI am away.\n')).kind).toBe('other');
    expect(readReport(Buffer.alloc(0)).kind).toBe('other');
  });
});

describe('printable', () => {
  it('escapes ESC, BEL, OSC, CR and bidi overrides, and leaves text escaped once as it is', () => {
    const nasty = 'a\u001b]0;title\u0007b\r\n\u009dc\u202ed';
    const once = printable(nasty);
    expect(once).toBe('a\\x1b]0;title\\x07b\\x0d\\x0a\\x9dc\\u{202e}d');
    expect(printable(once)).toBe(once);
    expect(printable('ünïcode ok')).toBe('ünïcode ok');
  });
});

describe("doctor's return-path check", () => {
  const config = (env: Record<string, string>) =>
    loadConfig({ cwd: tmpdir(), env: { NEWSLETTER_FROM: 'News <news@example.org>', ...env }, envFile: null });

  it('is ok on the From domain, and warns on another domain, where DMARC rests on DKIM alone', () => {
    expect(returnPathCheck(config({}))).toMatchObject({
      level: 'ok',
      message: expect.stringContaining('news+TOKEN@example.org'),
    });
    expect(returnPathCheck(config({ NEWSLETTER_RETURN_PATH: 'bounces@example.org' }))).toMatchObject({
      level: 'ok',
    });
    expect(
      returnPathCheck(
        config({ NEWSLETTER_RETURN_PATH: 'bounces@mail.example.com', NEWSLETTER_RETURN_PATH_DELIMITER: '-' }),
      ),
    ).toMatchObject({
      level: 'warning',
      message: expect.stringContaining(
        'bounces-TOKEN@mail.example.com, on another domain than the From (example.org)',
      ),
    });
    expect(returnPathCheck(config({ NEWSLETTER_FROM: `${'n'.repeat(40)}@example.org` }))).toMatchObject({
      level: 'warning',
      message: expect.stringContaining('without a token'),
    });
  });
});
