/**
 * HMAC-SHA256 under NEWSLETTER_SECRET, with the key prepared once per secret rather than once per
 * call. Each message costs three of them (its Message-ID, its unsubscribe token, its return-path
 * token); `createHmac(…, string)` turns the string into a key every time, about 0.3 µs of the
 * ~2 µs an HMAC costs (issue 17, bench/NOTES.md). The MAC is the same: a string key is its UTF-8
 * bytes either way.
 *
 * The last secret seen is remembered (a run uses one; verification may try two, current and
 * previous): nothing is kept that the process did not already hold.
 */
import { createHmac, createSecretKey, type Hmac, type KeyObject } from 'node:crypto';

let lastSecret: string | null = null;
let lastKey: KeyObject | null = null;

/** A fresh HMAC-SHA256 keyed with `secret` (UTF-8), as `createHmac('sha256', secret)`. */
export function hmacSha256(secret: string): Hmac {
  if (secret !== lastSecret || lastKey === null) {
    lastKey = createSecretKey(Buffer.from(secret, 'utf8'));
    lastSecret = secret;
  }
  return createHmac('sha256', lastKey);
}
