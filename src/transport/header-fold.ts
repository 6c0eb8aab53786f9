/**
 * Header lines within RFC 5322's hard limit: no physical line longer than 998 octets (§2.1.1).
 *
 * Folding (§2.2.3) may only happen at white space, so a value with a very long word (a subject of
 * 1,500 characters without a space, a display name pasted as one run of letters, a CSV cell that
 * fills a `{{field}}` in the subject) cannot be folded as written. Such a value is sent as RFC 2047
 * encoded words instead: each is short, and a decoder joins adjacent encoded words with the white
 * space between them removed (RFC 2047 §6.2), so the reader sees the value unchanged. Servers that
 * meet a longer line truncate it, split it where they like or refuse the message; none is what the
 * operator wrote.
 */
// nodemailer internals: pinned, and checked by test/unit/nodemailer-surface.test.ts (see mime.ts).
import { encodeWord } from 'nodemailer/lib/mime-funcs';

/** RFC 5322 §2.1.1: a line is at most 998 octets, without its CRLF. */
export const MAX_HEADER_LINE_OCTETS = 998;

const CRLF = '\r\n';
// Short encoded words, as nodemailer's MailComposer writes them: a folded line stays near 76.
const ENCODED_WORD_LENGTH = 52;

/**
 * Folds a header line at blanks so that its lines stay within 76 characters where a blank
 * allows (RFC 5322 §2.2.3: unfolding removes the CRLF and gets the line back); a longer word,
 * such as a URL, stays whole. Whether the result fits the hard limit is `fitsLineLimit`'s question.
 */
export function fold(line: string): string {
  if (line.length <= 76) return line;
  let out = '';
  let current = '';
  const words = line.split(' ');
  for (let i = 0; i < words.length; i++) {
    const word = words[i] as string;
    if (i === 0) current = word;
    else if (current.length + 1 + word.length <= 76 || current.trim() === '') current += ` ${word}`;
    else {
      out += `${current}${CRLF}`;
      current = ` ${word}`;
    }
  }
  return out + current;
}

/** True when no physical line of a (folded) header is longer than 998 octets. */
export function fitsLineLimit(header: string): boolean {
  // Character count first: for the usual short header it settles the question without encoding.
  if (header.length <= MAX_HEADER_LINE_OCTETS) return true;
  return header.split(CRLF).every((line) => Buffer.byteLength(line, 'utf8') <= MAX_HEADER_LINE_OCTETS);
}

/**
 * The whole text as encoded words, even where it is plain ASCII: the one form of an unstructured
 * value (a subject, a display name) that can always be folded. Spaces inside the text are kept
 * (Q encoding writes them as `_`).
 */
export function encodedText(text: string): string {
  // encodeWord, not encodeWords: the latter leaves plain ASCII as it is, however long.
  return encodeWord(text, 'Q', ENCODED_WORD_LENGTH);
}
