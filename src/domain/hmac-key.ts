/**
 * HMAC-SHA256 under NEWSLETTER_SECRET, with the key prepared once per secret rather than once per
 * call. Each message costs three of them (its Message-ID, its unsubscribe token, its return-path
 * token). node:crypto's `createHmac` sets up an OpenSSL context per call, and in a default send
 * that set-up was most of what the MACs cost (issue 17, bench/NOTES.md); the MAC is computed by
 * hmac-sha256-js.ts instead, from the key's two padded blocks hashed once. The MAC is the same,
 * byte for byte: a string key is its UTF-8 bytes, a string message too
 * (test/unit/hmac-sha256-js.test.ts compares with node:crypto).
 *
 * The last secret seen is remembered (a run uses one; verification may try two, current and
 * previous): nothing is kept that the process did not already hold.
 */
import { type HmacKey, hmacDigest, prepareHmacKey } from './hmac-sha256-js.js';

let lastSecret: string | null = null;
let lastKey: HmacKey | null = null;

/** One MAC being computed, as node:crypto's Hmac for the calls the project makes: text in, digest out. */
export interface HmacSha256 {
  update(text: string): HmacSha256;
  digest(): Buffer;
  digest(encoding: 'hex' | 'base64url' | 'base64'): string;
}

class Mac implements HmacSha256 {
  private text = '';

  constructor(private readonly key: HmacKey) {}

  update(text: string): HmacSha256 {
    this.text += text;
    return this;
  }

  digest(): Buffer;
  digest(encoding: 'hex' | 'base64url' | 'base64'): string;
  digest(encoding?: 'hex' | 'base64url' | 'base64'): Buffer | string {
    return encoding ? hmacDigest(this.key, this.text, encoding) : hmacDigest(this.key, this.text);
  }
}

/** A fresh HMAC-SHA256 keyed with `secret` (UTF-8), as `createHmac('sha256', secret)`. */
export function hmacSha256(secret: string): HmacSha256 {
  if (secret !== lastSecret || lastKey === null) {
    lastKey = prepareHmacKey(Buffer.from(secret, 'utf8'));
    lastSecret = secret;
  }
  return new Mac(lastKey);
}
