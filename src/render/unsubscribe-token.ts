/**
 * Unsubscribe tokens: `v2.<subscriberId>.<newsletterId>.<mac>`, the mac being base64url
 * HMAC-SHA256 under NEWSLETTER_SECRET. A v2 link leaves the lists that newsletter went to
 * (issue 14: unsubscribing is per list, as RFC 8058 and list owners expect); its page offers all
 * mail as well. The v1 links of messages sent before (`v1.<subscriberId>.<newsletterId>.<mac>`)
 * keep today's meaning: all mail from us, because that is what their reader was offered. The two
 * sign different purposes, so one can never be edited into the other.
 *
 * Test sends and previews carry a test token instead,
 * `v1.test.<newsletterId>.<mac>`: a colleague clicking the link in a test copy (or a mail
 * provider's unsubscribe button on it) must not unsubscribe the subscriber the copy was
 * personalised as. Its mac signs another purpose, so a test token can never be turned into a live
 * one by editing the text, and `serve` and `newsletter unsubscribe` answer it with "this was a
 * test" and change nothing. No database row per token: the link in every message can
 * be checked by `newsletter unsubscribe` or `serve` with nothing but the secret.
 *
 * The ids are in the clear (they are not secret; forging is what must be impossible). The purpose
 * is inside the mac, so a future token of another kind under the same secret can never be
 * replayed as an unsubscribe, and the version lets the format change without accepting old forms
 * by accident.
 */
import { timingSafeEqual } from 'node:crypto';
import { hmacSha256 } from '../domain/hmac-key.js';

const VERSION = 'v1';
const PURPOSE = 'unsubscribe';
const LISTS_VERSION = 'v2';
const LISTS_PURPOSE = 'unsubscribe-lists';
const TEST_PURPOSE = 'unsubscribe-test';
const TEST = 'test';
const ID = /^(?:0|[1-9][0-9]{0,15})$/;
const MAC = /^[A-Za-z0-9_-]{43}$/; // 32 bytes of base64url, unpadded
const TOKEN_SHAPE = /^(?:v1\.(?:[0-9]+|test)|v2\.[0-9]+)\.[0-9]+\.[A-Za-z0-9_-]+$/;

export interface UnsubscribeTarget {
  subscriberId: number;
  newsletterId: number;
}

/**
 * What a verified token stands for: one subscriber's opt-out (`lists`: the newsletter's lists, a
 * v2 link; `all`: all mail, a v1 link), or the inert link of a test copy.
 */
export type VerifiedToken =
  | ({ kind: 'subscriber'; scope: 'lists' | 'all' } & UnsubscribeTarget)
  | { kind: 'test'; newsletterId: number };

/** The link of a test send or a preview: valid (so a tester sees the real page), never acted on. */
export function createTestUnsubscribeToken(secret: string, newsletterId: number): string {
  if (!isId(newsletterId))
    throw new RangeError(`unsubscribe token ids must be non-negative integers: ${newsletterId}`);
  return `${VERSION}.${TEST}.${newsletterId}.${macOf(secret, TEST, newsletterId)}`;
}

/** The link of every message sent now (v2): leaves the lists of that newsletter. */
export function createUnsubscribeToken(secret: string, target: UnsubscribeTarget): string {
  const { subscriberId, newsletterId } = checkedIds(target);
  return `${LISTS_VERSION}.${subscriberId}.${newsletterId}.${listsMacOf(secret, subscriberId, newsletterId)}`;
}

/** A v1 link, as messages sent before per-list unsubscribes carried: all mail. Made by tests only. */
export function createAllMailUnsubscribeToken(secret: string, target: UnsubscribeTarget): string {
  const { subscriberId, newsletterId } = checkedIds(target);
  return `${VERSION}.${subscriberId}.${newsletterId}.${macOf(secret, subscriberId, newsletterId)}`;
}

function checkedIds(target: UnsubscribeTarget): UnsubscribeTarget {
  const { subscriberId, newsletterId } = target;
  if (!isId(subscriberId) || !isId(newsletterId)) {
    throw new RangeError(
      `unsubscribe token ids must be non-negative integers: ${subscriberId}, ${newsletterId}`,
    );
  }
  return target;
}

/**
 * The ids a token was made for, or null for anything not made with this secret: malformed,
 * tampered, another version. Never throws: its input comes from strangers on the internet.
 * An empty secret verifies nothing (a server started without one must not accept forgeries).
 *
 * Key rotation: `secret` may be a list, the current key first, then the previous one while it is
 * still accepted (config's unsubscribeKeys). Every key is tried, whatever the first one said, so
 * the time taken does not tell which key a token was made with.
 */
export function verifyUnsubscribeToken(
  secret: string | readonly string[],
  token: string,
): VerifiedToken | null {
  const keys = (typeof secret === 'string' ? [secret] : secret).filter((key) => key !== '');
  if (keys.length === 0 || typeof token !== 'string' || token.length > 200) return null;
  const parts = token.split('.');
  if (parts.length !== 4) return null;
  const [version, sid, nid, mac] = parts as [string, string, string, string];
  const test = sid === TEST;
  if (version === LISTS_VERSION) return verifyListsToken(keys, sid, nid, mac);
  if (version !== VERSION || !(test || ID.test(sid)) || !ID.test(nid) || !MAC.test(mac)) return null;
  const subscriberId = test ? TEST : Number(sid);
  const newsletterId = Number(nid);
  if ((subscriberId !== TEST && !isId(subscriberId)) || !isId(newsletterId)) return null;
  const given = Buffer.from(mac);
  let valid = false;
  for (const key of keys) {
    const expected = Buffer.from(macOf(key, subscriberId, newsletterId));
    // timingSafeEqual throws on unequal lengths; the length is public (always 43) anyway.
    if (given.length === expected.length && timingSafeEqual(given, expected)) valid = true;
  }
  if (!valid) return null;
  return subscriberId === TEST
    ? { kind: 'test', newsletterId }
    : { kind: 'subscriber', scope: 'all', subscriberId, newsletterId };
}

/** A v2 token's check: the same rules, its own purpose; never a test token. */
function verifyListsToken(keys: string[], sid: string, nid: string, mac: string): VerifiedToken | null {
  if (!ID.test(sid) || !ID.test(nid) || !MAC.test(mac)) return null;
  const subscriberId = Number(sid);
  const newsletterId = Number(nid);
  if (!isId(subscriberId) || !isId(newsletterId)) return null;
  const given = Buffer.from(mac);
  let valid = false;
  for (const key of keys) {
    const expected = Buffer.from(listsMacOf(key, subscriberId, newsletterId));
    if (given.length === expected.length && timingSafeEqual(given, expected)) valid = true;
  }
  return valid ? { kind: 'subscriber', scope: 'lists', subscriberId, newsletterId } : null;
}

function listsMacOf(secret: string, subscriberId: number, newsletterId: number): string {
  return hmacSha256(secret)
    .update(`${LISTS_VERSION}\n${LISTS_PURPOSE}\n${subscriberId}\n${newsletterId}`)
    .digest('base64url');
}

/**
 * What an operator pastes into `newsletter unsubscribe`: a bare token, or the whole link from a
 * message (`https://…/u/TOKEN`, maybe with a trailing slash or a query). Returns the token, not
 * yet verified, or null if the input is neither.
 */
export function parseUnsubscribeInput(tokenOrUrl: string): string | null {
  const input = tokenOrUrl.trim();
  if (TOKEN_SHAPE.test(input)) return input;
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    return null;
  }
  const match = /\/u\/([^/]+)\/?$/.exec(url.pathname);
  if (match?.[1] === undefined) return null;
  let token: string;
  try {
    token = decodeURIComponent(match[1]);
  } catch {
    return null;
  }
  return TOKEN_SHAPE.test(token) ? token : null;
}

function macOf(secret: string, subscriberId: number | typeof TEST, newsletterId: number): string {
  // Newline-separated fields cannot run into each other: (1, 23) and (12, 3) sign different text.
  // A test token signs another purpose (and no subscriber): no live token shares its text.
  const signed =
    subscriberId === TEST
      ? `${VERSION}\n${TEST_PURPOSE}\n${newsletterId}`
      : `${VERSION}\n${PURPOSE}\n${subscriberId}\n${newsletterId}`;
  return hmacSha256(secret).update(signed).digest('base64url');
}

function isId(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0;
}
