/**
 * The tokens of the VERP return path (issue 18): `bounces+bTOKEN@example.org` is the envelope
 * sender (MAIL FROM) of one delivery, so that its bounce comes back addressed to it, and
 * `bounces+uTOKEN@example.org` is the List-Unsubscribe mailto of that delivery.
 *
 * TOKEN = purpose letter (`b` bounce, `u` unsubscribe) + base32 (RFC 4648 alphabet, lower case:
 * MTAs that lower-case local parts keep it) of 16 bytes: the ledger row id (6 bytes, big-endian)
 * and 10 bytes of an HMAC-SHA256 under NEWSLETTER_SECRET over the row id, the newsletter id and
 * the recipient's address: bytes 0-9 for a bounce token, 10-19 for an unsubscribe token. One HMAC
 * per message gives both (the hot path pays for one), and neither half tells anything about the
 * other, so a `b` token edited into a `u` one fails. 27 characters, no `+`, `-` or `.`, so either
 * delimiter splits it off cleanly.
 *
 * The id is in the clear (not secret); the MAC binds it to the address it was sent to, so a token
 * cannot be made for another delivery without the secret, a token of one purpose never passes as
 * the other, and a database whose ids were handed out again (a restore, a new database) does not
 * accept an old token for somebody else. 80 bits of MAC, checked online one report at a time: no
 * guessing gets through. Pure; the store looks the row up (verify needs its newsletter and address).
 */
import { timingSafeEqual } from 'node:crypto';
import { hmacSha256 } from './hmac-key.js';

export type ReturnPathPurpose = 'bounce' | 'unsubscribe';

/** What a token names before it is checked: the ledger row, to be looked up. */
export interface ParsedReturnPathToken {
  purpose: ReturnPathPurpose;
  deliveryId: number;
  mac: Buffer;
}

/** The ledger row a token is checked against. */
export interface TokenDelivery {
  deliveryId: number;
  newsletterId: number;
  address: string;
}

const LETTER: Record<ReturnPathPurpose, string> = { bounce: 'b', unsubscribe: 'u' };
/** Where each purpose's 10 bytes start in the HMAC. */
const OFFSET: Record<ReturnPathPurpose, number> = { bounce: 0, unsubscribe: 10 };
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
const ID_BYTES = 6;
const MAC_BYTES = 10;
const BODY_CHARS = 26; // ceil(16 * 8 / 5)
const MAX_ID = 2 ** (8 * ID_BYTES) - 1;

/** A token found anywhere in a header value or an address: a word of exactly this shape. */
export const TOKEN_IN_TEXT = /(?<![a-z0-9])([bu][a-z2-7]{26})(?![a-z0-9])/gi;

export function createReturnPathToken(
  secret: string,
  purpose: ReturnPathPurpose,
  delivery: TokenDelivery,
): string {
  return tokenOf(purpose, delivery, macOf(secret, delivery));
}

/** Both tokens of a delivery, for the price of one HMAC (the personaliser's hot path). */
export function createReturnPathTokens(
  secret: string,
  delivery: TokenDelivery,
): { bounce: string; unsubscribe: string } {
  const mac = macOf(secret, delivery);
  return { bounce: tokenOf('bounce', delivery, mac), unsubscribe: tokenOf('unsubscribe', delivery, mac) };
}

function tokenOf(purpose: ReturnPathPurpose, delivery: TokenDelivery, mac: Buffer): string {
  const { deliveryId } = delivery;
  if (!Number.isSafeInteger(deliveryId) || deliveryId < 0 || deliveryId > MAX_ID)
    throw new RangeError(`return path tokens need a ledger row id in 0…2^48: ${deliveryId}`);
  // Filled whole before it is read, and never handed out: one buffer serves every token.
  const bytes = scratch;
  bytes.writeUIntBE(deliveryId, 0, ID_BYTES);
  const from = OFFSET[purpose];
  mac.copy(bytes, ID_BYTES, from, from + MAC_BYTES);
  return LETTER[purpose] + base32(bytes);
}

const scratch = Buffer.alloc(ID_BYTES + MAC_BYTES);

/** The parts of something shaped like a token (any case), or null. Never throws: strangers' input. */
export function parseReturnPathToken(text: string): ParsedReturnPathToken | null {
  if (typeof text !== 'string' || text.length !== BODY_CHARS + 1) return null;
  const lower = text.toLowerCase();
  const purpose = lower[0] === 'b' ? 'bounce' : lower[0] === 'u' ? 'unsubscribe' : null;
  if (purpose === null) return null;
  const bytes = unbase32(lower.slice(1));
  if (bytes === null) return null;
  return {
    purpose,
    deliveryId: bytes.readUIntBE(0, ID_BYTES),
    mac: bytes.subarray(ID_BYTES, ID_BYTES + MAC_BYTES),
  };
}

/**
 * Whether `token` was made for `delivery` under one of `keys` (current first, then the previous
 * one while accepted). Every key is tried, so the time taken does not tell which one matched.
 */
export function tokenMatches(
  keys: readonly string[],
  token: ParsedReturnPathToken,
  delivery: TokenDelivery,
): boolean {
  if (token.deliveryId !== delivery.deliveryId) return false;
  let valid = false;
  for (const key of keys) {
    if (key === '') continue;
    const from = OFFSET[token.purpose];
    const expected = macOf(key, delivery).subarray(from, from + MAC_BYTES);
    if (expected.length === token.mac.length && timingSafeEqual(expected, token.mac)) valid = true;
  }
  return valid;
}

/** Every distinct token-shaped word in `texts`, in order of appearance. */
export function tokensIn(texts: readonly string[]): ParsedReturnPathToken[] {
  const seen = new Set<string>();
  const found: ParsedReturnPathToken[] = [];
  for (const text of texts) {
    for (const match of text.matchAll(TOKEN_IN_TEXT)) {
      const word = (match[1] ?? '').toLowerCase();
      if (seen.has(word)) continue;
      seen.add(word);
      const parsed = parseReturnPathToken(word);
      if (parsed) found.push(parsed);
    }
  }
  return found;
}

function macOf(secret: string, delivery: TokenDelivery): Buffer {
  // Newline-separated fields cannot run into each other; the purpose picks its own bytes.
  return hmacSha256(secret)
    .update(`rp1\n${delivery.deliveryId}\n${delivery.newsletterId}\n${delivery.address}`)
    .digest();
}

const ALPHABET_CODES = Buffer.from(ALPHABET, 'latin1');
/** The characters of a token, written as bytes and read out once (a token per message). */
const letters = Buffer.alloc(BODY_CHARS);

function base32(bytes: Buffer): string {
  let at = 0;
  let buffer = 0;
  let bits = 0;
  for (let i = 0; i < bytes.length; i++) {
    buffer = (buffer << 8) | (bytes[i] as number);
    bits += 8;
    while (bits >= 5) {
      letters[at++] = ALPHABET_CODES[(buffer >>> (bits - 5)) & 31] as number;
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
  }
  if (bits > 0) letters[at++] = ALPHABET_CODES[(buffer << (5 - bits)) & 31] as number;
  return letters.toString('latin1', 0, at);
}

function unbase32(text: string): Buffer | null {
  if (text.length !== BODY_CHARS) return null;
  const bytes = Buffer.alloc(ID_BYTES + MAC_BYTES);
  let buffer = 0;
  let bits = 0;
  let at = 0;
  for (const char of text) {
    const value = ALPHABET.indexOf(char);
    if (value === -1) return null;
    buffer = (buffer << 5) | value;
    bits += 5;
    if (bits >= 8) {
      if (at < bytes.length) bytes[at] = (buffer >>> (bits - 8)) & 255;
      at += 1;
      bits -= 8;
    }
    buffer &= (1 << bits) - 1;
  }
  // 26 characters carry 130 bits: the last 2 must be zero, or the text was not one of ours.
  return at === bytes.length && buffer === 0 ? bytes : null;
}
