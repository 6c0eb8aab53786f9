/**
 * Quoted-printable (RFC 2045 §6.7) for a body encoded in pieces: a newsletter's literal text once,
 * each recipient's values per message (mime.ts). Every piece is encoded as if it started a line
 * and is joined to the next by a soft line break ("=" CRLF), which decoders remove: so a piece
 * never needs to know where the one before it ended, no line can grow past 76 characters at a
 * join, and a soft break can never fall inside a value's encoding.
 *
 * Beyond the RFC, two properties the rest of the transport relies on:
 * - no encoded line starts with "." (it is written `=2E`), so the SMTP client never has to
 *   dot-stuff a message built from these pieces;
 * - "=" is always followed by two hex digits or a line break, so a MIME boundary that contains
 *   "=_" can never occur in encoded text (RFC 2045's own advice).
 */

/** Characters on a line before a soft break's "=": lines of at most 76. */
const MAX_LINE = 75;
const HEX = Array.from({ length: 256 }, (_, byte) => `=${byte.toString(16).toUpperCase().padStart(2, '0')}`);
/** A value that encodes to itself: printable ASCII without "=", no leading "." or trailing blank. */
const VERBATIM = /^[\x21-\x2d\x2f-\x3c\x3e-\x7e](?:[\x20-\x3c\x3e-\x7e]*[\x21-\x3c\x3e-\x7e])?$/;

/**
 * Encodes `text` (any string; line breaks CR, LF or CRLF become CRLF hard breaks) starting at the
 * beginning of a line. The result has no trailing soft break. Each piece is normalised on its own:
 * a CR that ends one piece and an LF that starts the next stay two line breaks.
 */
export function encodeQp(text: string): string {
  if (text.length <= MAX_LINE && (text === '' || VERBATIM.test(text))) return text;
  let out = '';
  let column = 0;
  const length = text.length;
  for (let i = 0; i < length; i++) {
    const code = text.charCodeAt(i);
    // A run of characters that stand for themselves (a link is ~90 of them) is copied as one
    // slice, up to the end of the line: what the loop below would write one by one.
    if (column < MAX_LINE && standsForItself(text, i, code) && !(code === 46 && column === 0)) {
      const limit = Math.min(length, i + MAX_LINE - column);
      let end = i + 1;
      while (end < limit && standsForItself(text, end, text.charCodeAt(end))) end++;
      out += text.slice(i, end);
      column += end - i;
      i = end - 1;
      continue;
    }
    let token: string;
    if (code === 13 || code === 10) {
      if (code === 13 && text.charCodeAt(i + 1) === 10) i++;
      out += '\r\n';
      column = 0;
      continue;
    }
    if (code >= 33 && code <= 126 && code !== 61) {
      token = code === 46 && column === 0 ? '=2E' : text.charAt(i);
    } else if (code === 32 || code === 9) {
      // A blank that ends a line (or this piece) would be trailing whitespace: encode it.
      const next = text.charCodeAt(i + 1);
      const last = i + 1 === length || next === 13 || next === 10;
      token = last ? (HEX[code] as string) : text.charAt(i);
    } else if (code < 128) {
      token = HEX[code] as string;
    } else {
      const [bytes, width] = utf8Of(text, i);
      token = bytes;
      i += width - 1;
    }
    if (column + token.length > MAX_LINE) {
      out += '=\r\n';
      column = 0;
      if (token === '.') token = '=2E';
    }
    out += token;
    column += token.length;
  }
  return out;
}

/**
 * True when the character at `i` is written as it is: printable ASCII but "=", or a blank that
 * neither ends the text nor comes before a line break (those are encoded: no trailing blanks).
 * A "." is itself too; only at the start of a line is it written `=2E`, which the caller checks.
 */
function standsForItself(text: string, i: number, code: number): boolean {
  if (code >= 33 && code <= 126) return code !== 61;
  if (code !== 32 && code !== 9) return false;
  if (i + 1 === text.length) return false;
  const next = text.charCodeAt(i + 1);
  return next !== 13 && next !== 10;
}

/** The `=XX` encoding of the UTF-8 bytes of the code point at `i`, and how many UTF-16 units it took. */
function utf8Of(text: string, i: number): [string, number] {
  const code = text.charCodeAt(i);
  if (code < 0x800) return [(HEX[0xc0 | (code >> 6)] as string) + HEX[0x80 | (code & 63)], 1];
  if (code >= 0xd800 && code <= 0xdbff) {
    const low = text.charCodeAt(i + 1);
    if (low >= 0xdc00 && low <= 0xdfff) {
      const point = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
      return [
        (HEX[0xf0 | (point >> 18)] as string) +
          HEX[0x80 | ((point >> 12) & 63)] +
          HEX[0x80 | ((point >> 6) & 63)] +
          HEX[0x80 | (point & 63)],
        2,
      ];
    }
  }
  // A lone surrogate is written as U+FFFD, as Buffer.from does.
  const point = code >= 0xd800 && code <= 0xdfff ? 0xfffd : code;
  return [
    (HEX[0xe0 | (point >> 12)] as string) + HEX[0x80 | ((point >> 6) & 63)] + HEX[0x80 | (point & 63)],
    1,
  ];
}

/** Base64 in lines of 76 characters, CRLF between them, none after the last. */
export function encodeBase64Lines(bytes: Buffer): string {
  const text = bytes.toString('base64');
  if (text.length <= 76) return text;
  const lines: string[] = [];
  for (let i = 0; i < text.length; i += 76) lines.push(text.slice(i, i + 76));
  return lines.join('\r\n');
}

/**
 * Quoted-printable or base64, whichever is shorter for `text`: mostly-ASCII text reads better
 * and is smaller as quoted-printable; text in a non-Latin script is a third of the size in base64.
 */
export function preferBase64(text: string): boolean {
  let ascii = 0;
  let other = 0;
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) < 128) ascii += 1;
    else other += 1;
  }
  // Quoted-printable spends about 6 bytes on a 2-byte character, base64 about 2.7 bytes.
  return ascii + other * 6 > (ascii + other * 2) * (4 / 3);
}
