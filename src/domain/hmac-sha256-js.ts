/**
 * HMAC-SHA256 (RFC 2104, FIPS 180-4) in JavaScript, for the short messages the send path signs:
 * each message's Message-ID, unsubscribe token and return-path token (src/domain/hmac-key.ts).
 *
 * Why not node:crypto: every `createHmac` sets up an OpenSSL HMAC context (HMAC_Init_ex, a
 * provider lookup), and that set-up, not the hashing, is most of its cost: in a profile of a
 * default send the two HMACs of each message took about a sixth of the main thread (issue 17,
 * bench/NOTES.md "Issue 17 (session 7)"). Here the key's two padded blocks are hashed once per
 * secret; a MAC of a short message is then two or three compressions, with no native call.
 *
 * The output is the very HMAC-SHA256 node:crypto computes, byte for byte, for every key and
 * message (test/unit/hmac-sha256-js.test.ts checks it against node:crypto). Nothing here is
 * secret-dependent in its timing that the MAC's use cares about: the MACs are computed to be
 * sent or compared, and comparisons stay with timingSafeEqual where the callers use it.
 */
import { createHash } from 'node:crypto';

const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
  0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
  0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
  0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
  0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
  0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
  0xc67178f2,
]);
const IV = new Int32Array([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);
const BLOCK = 64;

// Scratch space, reused: the send path runs on one thread per isolate, and nothing here awaits.
const w = new Int32Array(64);
const state = new Int32Array(8);
/** The message being hashed, padded: grown when a longer one comes. */
let blocks = new Uint8Array(4 * BLOCK);
const inner = new Uint8Array(32);
const out = Buffer.alloc(32);

/** Hashes `count` 64-byte blocks of `data` into `h` (the compression function, FIPS 180-4 6.2.2). */
function compress(h: Int32Array, data: Uint8Array, count: number): void {
  let h0 = h[0] as number;
  let h1 = h[1] as number;
  let h2 = h[2] as number;
  let h3 = h[3] as number;
  let h4 = h[4] as number;
  let h5 = h[5] as number;
  let h6 = h[6] as number;
  let h7 = h[7] as number;
  for (let block = 0; block < count; block++) {
    const at = block * BLOCK;
    for (let i = 0; i < 16; i++) {
      const j = at + i * 4;
      w[i] =
        ((data[j] as number) << 24) |
        ((data[j + 1] as number) << 16) |
        ((data[j + 2] as number) << 8) |
        (data[j + 3] as number);
    }
    for (let i = 16; i < 64; i++) {
      const x = w[i - 15] as number;
      const y = w[i - 2] as number;
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[i] = ((w[i - 16] as number) + s0 + (w[i - 7] as number) + s1) | 0;
    }
    let a = h0;
    let b = h1;
    let c = h2;
    let d = h3;
    let e = h4;
    let f = h5;
    let g = h6;
    let hh = h7;
    for (let i = 0; i < 64; i++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const ch = (e & f) ^ (~e & g);
      const t1 = (hh + S1 + ch + (K[i] as number) + (w[i] as number)) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const maj = (a & b) ^ (a & c) ^ (b & c);
      const t2 = (S0 + maj) | 0;
      hh = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    h0 = (h0 + a) | 0;
    h1 = (h1 + b) | 0;
    h2 = (h2 + c) | 0;
    h3 = (h3 + d) | 0;
    h4 = (h4 + e) | 0;
    h5 = (h5 + f) | 0;
    h6 = (h6 + g) | 0;
    h7 = (h7 + hh) | 0;
  }
  h[0] = h0;
  h[1] = h1;
  h[2] = h2;
  h[3] = h3;
  h[4] = h4;
  h[5] = h5;
  h[6] = h6;
  h[7] = h7;
}

/**
 * Hashes `length` bytes already in `blocks` after one block already hashed into `from` (the key's
 * padded block): pads them (0x80, zeros, the total length in bits) and writes the digest to `to`.
 */
function finish(from: Int32Array, length: number, to: Uint8Array): void {
  const total = length + 9;
  const count = Math.ceil(total / BLOCK);
  const end = count * BLOCK;
  blocks[length] = 0x80;
  blocks.fill(0, length + 1, end - 8);
  // The bit length of key block and message, 64 bits big-endian (exact: a Number holds 2^53).
  const bits = (BLOCK + length) * 8;
  const high = Math.floor(bits / 0x100000000);
  const low = bits >>> 0;
  blocks[end - 8] = high >>> 24;
  blocks[end - 7] = (high >>> 16) & 0xff;
  blocks[end - 6] = (high >>> 8) & 0xff;
  blocks[end - 5] = high & 0xff;
  blocks[end - 4] = low >>> 24;
  blocks[end - 3] = (low >>> 16) & 0xff;
  blocks[end - 2] = (low >>> 8) & 0xff;
  blocks[end - 1] = low & 0xff;
  state.set(from);
  compress(state, blocks, count);
  for (let i = 0; i < 8; i++) {
    const v = state[i] as number;
    to[i * 4] = v >>> 24;
    to[i * 4 + 1] = (v >>> 16) & 0xff;
    to[i * 4 + 2] = (v >>> 8) & 0xff;
    to[i * 4 + 3] = v & 0xff;
  }
}

/** Copies `text` as UTF-8 into `blocks` (grown if needed) and returns its length in bytes. */
function load(text: string): number {
  const n = text.length;
  if (blocks.length < 3 * n + 2 * BLOCK) blocks = new Uint8Array(3 * n + 2 * BLOCK);
  for (let i = 0; i < n; i++) {
    const code = text.charCodeAt(i);
    if (code >= 0x80) return Buffer.from(blocks.buffer, blocks.byteOffset).write(text, 0, 'utf8');
    blocks[i] = code;
  }
  return n;
}

/** A key made ready: its inner and outer padded blocks hashed. */
export interface HmacKey {
  readonly inner: Int32Array;
  readonly outer: Int32Array;
}

export function prepareHmacKey(secret: Uint8Array): HmacKey {
  const key = new Uint8Array(BLOCK);
  key.set(secret.length > BLOCK ? createHash('sha256').update(secret).digest() : secret);
  const pad = new Uint8Array(BLOCK);
  const prepared = { inner: Int32Array.from(IV), outer: Int32Array.from(IV) };
  for (let i = 0; i < BLOCK; i++) pad[i] = (key[i] as number) ^ 0x36;
  compress(prepared.inner, pad, 1);
  for (let i = 0; i < BLOCK; i++) pad[i] = (key[i] as number) ^ 0x5c;
  compress(prepared.outer, pad, 1);
  return prepared;
}

/**
 * HMAC-SHA256 of `text` (UTF-8) under a prepared key. The Buffer returned is shared scratch
 * space, overwritten by the next call: read or copy it at once (`digest` below does).
 */
function macInto(key: HmacKey, text: string): Buffer {
  const length = load(text);
  finish(key.inner, length, inner);
  blocks.set(inner, 0);
  finish(key.outer, 32, out);
  return out;
}

/** HMAC-SHA256 of `text` as `createHmac('sha256', key).update(text).digest(encoding)` gives it. */
export function hmacDigest(key: HmacKey, text: string): Buffer;
export function hmacDigest(key: HmacKey, text: string, encoding: 'hex' | 'base64url' | 'base64'): string;
export function hmacDigest(
  key: HmacKey,
  text: string,
  encoding?: 'hex' | 'base64url' | 'base64',
): Buffer | string {
  const mac = macInto(key, text);
  return encoding ? mac.toString(encoding) : Buffer.from(mac);
}
