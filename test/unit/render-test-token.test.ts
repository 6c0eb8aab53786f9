/**
 * Test tokens (issue 13): the links of test sends and previews verify (a tester sees the real
 * page) but name nobody, and can never be edited into a live token or made without the key.
 */
import { describe, expect, it } from 'vitest';
import {
  createTestUnsubscribeToken,
  createUnsubscribeToken,
  parseUnsubscribeInput,
  verifyUnsubscribeToken,
} from '../../src/render/unsubscribe-token.js';

const SECRET = 'a test secret that is long enough';

describe('test unsubscribe tokens', () => {
  it('verify as a test of their newsletter, naming no subscriber', () => {
    const token = createTestUnsubscribeToken(SECRET, 7);
    expect(token).toMatch(/^v1\.test\.7\.[A-Za-z0-9_-]{43}$/);
    expect(verifyUnsubscribeToken(SECRET, token)).toEqual({ kind: 'test', newsletterId: 7 });
    expect(verifyUnsubscribeToken([`${SECRET}!`, SECRET], token)).toEqual({ kind: 'test', newsletterId: 7 });
  });

  it('cannot be forged, nor turned into a live token by editing it, nor a live one into a test', () => {
    const test = createTestUnsubscribeToken(SECRET, 7);
    const [, , , testMac] = test.split('.') as [string, string, string, string];
    expect(verifyUnsubscribeToken('another secret', test)).toBeNull();
    expect(verifyUnsubscribeToken(SECRET, `v1.test.8.${testMac}`)).toBeNull();
    expect(verifyUnsubscribeToken(SECRET, `v1.0.7.${testMac}`)).toBeNull();
    expect(verifyUnsubscribeToken(SECRET, `v1.42.7.${testMac}`)).toBeNull();
    const live = createUnsubscribeToken(SECRET, { subscriberId: 42, newsletterId: 7 });
    const [, , , liveMac] = live.split('.') as [string, string, string, string];
    expect(verifyUnsubscribeToken(SECRET, `v1.test.7.${liveMac}`)).toBeNull();
    expect(verifyUnsubscribeToken(SECRET, `v1.TEST.7.${testMac}`)).toBeNull();
  });

  it('is found in a pasted link like any other token', () => {
    const token = createTestUnsubscribeToken(SECRET, 3);
    expect(parseUnsubscribeInput(`https://news.example.org/u/${token}/`)).toBe(token);
    expect(parseUnsubscribeInput(token)).toBe(token);
  });
});
