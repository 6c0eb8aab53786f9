import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  createAllMailUnsubscribeToken,
  createUnsubscribeToken,
  parseUnsubscribeInput,
  verifyUnsubscribeToken,
} from '../../src/render/unsubscribe-token.js';

const SECRET = 'a test secret that is long enough';

describe('unsubscribe tokens', () => {
  it('round-trips', () => {
    // v2 (issue 14): the lists of newsletter 7.
    const token = createUnsubscribeToken(SECRET, { subscriberId: 42, newsletterId: 7 });
    expect(token).toMatch(/^v2\.42\.7\.[A-Za-z0-9_-]{43}$/);
    expect(verifyUnsubscribeToken(SECRET, token)).toEqual({
      kind: 'subscriber',
      scope: 'lists',
      subscriberId: 42,
      newsletterId: 7,
    });
  });

  it('keeps the v1 links of messages sent before as they were: all mail', () => {
    const token = createAllMailUnsubscribeToken(SECRET, { subscriberId: 42, newsletterId: 7 });
    expect(token).toMatch(/^v1\.42\.7\.[A-Za-z0-9_-]{43}$/);
    expect(verifyUnsubscribeToken(SECRET, token)).toEqual({
      kind: 'subscriber',
      scope: 'all',
      subscriberId: 42,
      newsletterId: 7,
    });
    expect(parseUnsubscribeInput(`https://news.example.org/u/${token}`)).toBe(token);
    const v2 = createUnsubscribeToken(SECRET, { subscriberId: 42, newsletterId: 7 });
    expect(parseUnsubscribeInput(`https://news.example.org/u/${v2}`)).toBe(v2);
    // The two sign different purposes: neither mac makes the other version valid.
    expect(verifyUnsubscribeToken(SECRET, `v2.${token.slice(3)}`)).toBeNull();
    expect(verifyUnsubscribeToken(SECRET, `v1.${v2.slice(3)}`)).toBeNull();
  });

  it('round-trips any pair of ids (property)', () => {
    fc.assert(
      fc.property(fc.nat(), fc.nat(), (subscriberId, newsletterId) => {
        const token = createUnsubscribeToken(SECRET, { subscriberId, newsletterId });
        expect(verifyUnsubscribeToken(SECRET, token)).toEqual({
          kind: 'subscriber',
          scope: 'lists',
          subscriberId,
          newsletterId,
        });
      }),
    );
  });

  it('is deterministic and depends on every input', () => {
    const token = createUnsubscribeToken(SECRET, { subscriberId: 1, newsletterId: 23 });
    expect(createUnsubscribeToken(SECRET, { subscriberId: 1, newsletterId: 23 })).toBe(token);
    expect(createUnsubscribeToken(SECRET, { subscriberId: 12, newsletterId: 3 }).split('.')[3]).not.toBe(
      token.split('.')[3],
    );
    expect(createUnsubscribeToken(`${SECRET}!`, { subscriberId: 1, newsletterId: 23 })).not.toBe(token);
  });

  it('rejects tampered tokens', () => {
    const token = createUnsubscribeToken(SECRET, { subscriberId: 42, newsletterId: 7 });
    const [, , , mac] = token.split('.') as [string, string, string, string];
    const flipped = (mac[0] === 'A' ? 'B' : 'A') + mac.slice(1);
    expect(verifyUnsubscribeToken(SECRET, `v2.43.7.${mac}`)).toBeNull();
    expect(verifyUnsubscribeToken(SECRET, `v2.42.8.${mac}`)).toBeNull();
    expect(verifyUnsubscribeToken(SECRET, `v2.42.7.${flipped}`)).toBeNull();
    expect(verifyUnsubscribeToken(SECRET, `v1.42.7.${mac}`)).toBeNull();
    expect(verifyUnsubscribeToken(SECRET, `v3.42.7.${mac}`)).toBeNull();
    expect(verifyUnsubscribeToken('another secret', token)).toBeNull();
    expect(verifyUnsubscribeToken('', token)).toBeNull();
  });

  it.each([
    '',
    'v1',
    'v1.1.2',
    'v1.1.2.',
    'v1.1.2.abc',
    'v1.1.2.3.4',
    'v1.01.2.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
    'v1.-1.2.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
    'v1.99999999999999999999.2.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
    'v1.1.2.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=',
    'v1.1.2.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n',
    ' v1.1.2.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
    'x'.repeat(10_000),
  ])('returns null for the malformed token %j', (token) => {
    expect(verifyUnsubscribeToken(SECRET, token)).toBeNull();
  });

  it('never throws, whatever it is given (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (token) => {
        expect(verifyUnsubscribeToken(SECRET, token)).toBeNull();
      }),
    );
    expect(verifyUnsubscribeToken(SECRET, undefined as unknown as string)).toBeNull();
  });

  it('refuses to create a token for an id that is not a non-negative integer', () => {
    expect(() => createUnsubscribeToken(SECRET, { subscriberId: -1, newsletterId: 1 })).toThrow(RangeError);
    expect(() => createUnsubscribeToken(SECRET, { subscriberId: 1.5, newsletterId: 1 })).toThrow(RangeError);
  });
});

describe('parseUnsubscribeInput', () => {
  const token = createUnsubscribeToken(SECRET, { subscriberId: 5, newsletterId: 9 });

  it.each([
    token,
    `  ${token}\n`,
    `https://news.example.org/u/${token}`,
    `https://news.example.org/base/u/${token}/`,
    `https://news.example.org/u/${token}?utm_source=x#top`,
    `http://localhost:8080/u/${encodeURIComponent(token)}`,
  ])('finds the token in %j', (input) => {
    expect(parseUnsubscribeInput(input)).toBe(token);
  });

  it.each([
    '',
    'hello',
    'https://news.example.org/',
    `https://news.example.org/x/${token}`,
    `https://news.example.org/u/${token}/extra`,
    'https://news.example.org/u/%E0%A4%A',
    'v1.1.2',
  ])('returns null for %j', (input) => {
    expect(parseUnsubscribeInput(input)).toBeNull();
  });
});
