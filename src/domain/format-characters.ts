/**
 * Unicode "format" characters (general category Cf): zero width spaces and joiners, the word
 * joiner, the soft hyphen, bidirectional marks, the byte order mark, tag characters. They print as
 * nothing, so `\u200bdan@example.com` looks like `dan@example.com` on every screen, yet it is
 * another ledger key (a second copy for the same person) and a mail server refuses it. They come
 * in with text copied from web pages, chats and word processors, never on purpose.
 *
 * A leading BOM of a whole file is not an address's business: the CSV readers strip it
 * (csv-parse `bom: true`) before any cell is read.
 */

const FORMAT = /\p{Cf}/u;

/** The names of the ones people meet; the rest are named by their code point only. */
const NAMES: ReadonlyMap<number, string> = new Map([
  [0x00ad, 'SOFT HYPHEN'],
  [0x061c, 'ARABIC LETTER MARK'],
  [0x180e, 'MONGOLIAN VOWEL SEPARATOR'],
  [0x200b, 'ZERO WIDTH SPACE'],
  [0x200c, 'ZERO WIDTH NON-JOINER'],
  [0x200d, 'ZERO WIDTH JOINER'],
  [0x200e, 'LEFT-TO-RIGHT MARK'],
  [0x200f, 'RIGHT-TO-LEFT MARK'],
  [0x202a, 'LEFT-TO-RIGHT EMBEDDING'],
  [0x202b, 'RIGHT-TO-LEFT EMBEDDING'],
  [0x202c, 'POP DIRECTIONAL FORMATTING'],
  [0x202d, 'LEFT-TO-RIGHT OVERRIDE'],
  [0x202e, 'RIGHT-TO-LEFT OVERRIDE'],
  [0x2060, 'WORD JOINER'],
  [0x2061, 'FUNCTION APPLICATION'],
  [0x2062, 'INVISIBLE TIMES'],
  [0x2063, 'INVISIBLE SEPARATOR'],
  [0x2064, 'INVISIBLE PLUS'],
  [0x2066, 'LEFT-TO-RIGHT ISOLATE'],
  [0x2067, 'RIGHT-TO-LEFT ISOLATE'],
  [0x2068, 'FIRST STRONG ISOLATE'],
  [0x2069, 'POP DIRECTIONAL ISOLATE'],
  [0xfeff, 'ZERO WIDTH NO-BREAK SPACE, the byte order mark'],
]);

export interface FormatCharacter {
  /** 1-based, counted in characters as a person counts them (code points). */
  position: number;
  /** `U+200B (ZERO WIDTH SPACE)`, or `U+E0041 (a format character)`. */
  description: string;
}

/** The first format character in `text`, or null when it has none. */
export function findFormatCharacter(text: string): FormatCharacter | null {
  let position = 0;
  for (const c of text) {
    position++;
    if (FORMAT.test(c)) return { position, description: describeFormatCharacter(c) };
  }
  return null;
}

export function describeFormatCharacter(c: string): string {
  const code = c.codePointAt(0) ?? 0;
  return `${codePoint(code)} (${NAMES.get(code) ?? 'a format character'})`;
}

/** Format characters written as `\u200b` (`\u{e0041}` beyond the BMP), so that a message shows them. */
export function revealFormatCharacters(text: string): string {
  return text.replace(/\p{Cf}/gu, (c) => {
    const hex = (c.codePointAt(0) ?? 0).toString(16);
    return hex.length <= 4 ? `\\u${hex.padStart(4, '0')}` : `\\u{${hex}}`;
  });
}

function codePoint(code: number): string {
  return `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
}
