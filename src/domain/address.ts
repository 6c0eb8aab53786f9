import { domainToASCII } from 'node:url';
import { findFormatCharacter, revealFormatCharacters } from './format-characters.js';

/**
 * One cell of an imported list, or an address typed on the command line, turned into the two forms
 * the rest of the code uses:
 *
 * - `email`: what goes on the envelope. Trimmed, local part kept as written (RFC 5321 says it is
 *   case-sensitive, and a few servers still treat it so), domain lower-cased and, for an
 *   internationalised domain, converted to its punycode (A-label) form.
 * - `address`: the ledger key, `email` fully lower-cased. Two rows that differ only in case are one
 *   recipient: sending to both would break "never twice" for everyone whose server ignores case,
 *   which is nearly all of them.
 *
 * A practical validator, not the RFC 5322 grammar. The choices:
 *
 * - One mailbox per cell. Commas, semicolons or spaces between two addresses are refused, never
 *   split: a list is one address per row, and guessing would hide a broken export.
 * - `Name <a@b.c>` is accepted and reduced to the address; the name is returned as `displayName`.
 * - The local part is a dot-atom (RFC 5321 "Dot-string": no leading, trailing or doubled dot) or a
 *   quoted string covering the whole local part. A quoted string that needs no quotes is unquoted
 *   (RFC 5321 4.1.2), so `"ann"@x.org` and `ann@x.org` are one recipient. Comments, obsolete forms
 *   and folding whitespace are refused.
 * - A non-ASCII local part (RFC 6531) is accepted, put in Unicode NFC form, and flagged `smtputf8`:
 *   only a server that announces SMTPUTF8 can take it, and that is the transport's decision.
 * - The domain is a host name with at least one dot: labels of letters, digits and inner hyphens,
 *   1 to 63 octets, a last label that is not all digits. Address literals (`a@[192.0.2.1]`), dotless
 *   domains (`a@localhost`) and a trailing dot are refused: none belongs on a mailing list.
 * - Lengths are RFC 5321 limits in octets of what goes on the wire: local part 64 (UTF-8), domain
 *   255 (A-labels), the whole address 254 (the 256-octet path less its angle brackets).
 * - Control characters (C0 but tab, DEL, C1, and the Unicode line and paragraph separators) are
 *   refused anywhere, before trimming: a CR or LF in an address is header injection, never a typo
 *   to fix. Spaces, tabs and other Unicode white space around the address are trimmed; inside it,
 *   outside quotes, they are refused (or reported as two addresses when both sides hold an '@').
 * - Invisible format characters (Unicode category Cf: U+200B ZERO WIDTH SPACE, U+200C, U+200D,
 *   U+2060, U+FEFF, U+00AD, the bidirectional marks…) are refused anywhere, naming the character:
 *   trimming would hide them only at the ends, and inside an address they make a second ledger key
 *   for the same person that the mail server then refuses (format-characters.ts).
 * - A local part starting with `-` is refused: handed to sendmail (or any MTA run with the address
 *   among its arguments) it is an option, e.g. `-oQ/tmp/x@x.org` or `-X/path@x.org` (write a log
 *   to any file). Legal under RFC 5321, but no list needs it and the harm is real.
 */
export type AddressResult =
  | {
      ok: true;
      email: string;
      address: string;
      /** The local part holds non-ASCII characters: deliverable only over SMTPUTF8. */
      smtputf8: boolean;
      /** The name of a `Name <a@b.c>` cell, unquoted; null when the cell was a bare address. */
      displayName: string | null;
    }
  | { ok: false; problem: string };

export const MAX_LOCAL_OCTETS = 64;
export const MAX_DOMAIN_OCTETS = 255;
export const MAX_ADDRESS_OCTETS = 254;
const MAX_LABEL_OCTETS = 63;

// C0 controls but tab, DEL, C1 controls, LINE SEPARATOR and PARAGRAPH SEPARATOR. A tab is white
// space: trimmed around the address, refused inside it like a space.
const CONTROL_NOT_TAB = /(?!\t)[\p{Cc}\u2028\u2029]/u;
// With the u flag a well-formed surrogate pair is one code point, so this finds only lone halves.
const LONE_SURROGATE = /\p{Cs}/u;
const WHITESPACE = /\s/u;
// RFC 5322 atext, plus any non-ASCII character (RFC 6531 UTF8-non-ascii); white space was refused
// before this is used.
const ATOM = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~\u0080-\u{10ffff}-]+$/u;
const NON_ASCII = /\P{ASCII}/u;
const LABEL = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;
// What a Unicode domain may hold besides non-ASCII characters before domainToASCII sees it: that
// function parses a URL host, so `a/b.com` would otherwise come back as `a`.
const IDN_ASCII_PART = /^[A-Za-z0-9.-]*$/;

const ONE_PER_ROW = 'put each address on its own row';

export function normaliseAddress(raw: string): AddressResult {
  const control = CONTROL_NOT_TAB.exec(raw);
  if (control) {
    return fail(`${show(raw)} contains a control character (${describeControl(control[0])}); remove it`);
  }
  if (LONE_SURROGATE.test(raw)) {
    return fail(`${show(raw)} contains a broken Unicode character; check the file's encoding`);
  }
  // Before trimming: String.prototype.trim removes U+FEFF, so a BOM pasted before an address
  // would otherwise pass unseen while one inside it is refused.
  const invisible = findFormatCharacter(raw);
  if (invisible) {
    return fail(
      `${show(raw)} contains an invisible character ${invisible.description} at position ${invisible.position}; ` +
        'delete it (retype the address: text copied from web pages, chats and documents carries such characters)',
    );
  }
  const text = raw.trim();
  if (text === '') {
    return fail('the address is empty');
  }

  const split = splitMailbox(text);
  if (!split.ok) {
    return split;
  }
  const { spec, displayName } = split;
  if (spec === '') {
    return fail(`${show(text)} has nothing between '<' and '>'`);
  }
  if (hasUnquoted(spec, (c) => WHITESPACE.test(c))) {
    return countAt(spec.split(/\s+/u)) > 1
      ? fail(`${show(text)} holds more than one address separated by spaces; ${ONE_PER_ROW}`)
      : fail(`${show(text)} contains white space; an address has none`);
  }

  const ats = unquotedIndexes(spec, '@');
  if (ats.length === 0) {
    return fail(`${show(text)} has no '@'; is this the right column?`);
  }
  if (ats.length > 1) {
    return fail(`${show(text)} has more than one '@'; ${ONE_PER_ROW}, or quote a local part holding '@'`);
  }
  const at = ats[0]!;
  const local = normaliseLocal(spec.slice(0, at), text);
  if (!local.ok) {
    return local;
  }
  // After unquoting: `"-oQ/tmp"@x.org` needs no quotes, so it becomes `-oQ/tmp@x.org` like any other.
  if (local.value.startsWith('-')) {
    return fail(
      `${show(text)} starts with '-', which sendmail and other mail programs would take for an option; ` +
        'fix the address or leave it out',
    );
  }
  const domain = normaliseDomain(spec.slice(at + 1), text);
  if (!domain.ok) {
    return domain;
  }

  const localOctets = Buffer.byteLength(local.value, 'utf8');
  if (localOctets > MAX_LOCAL_OCTETS) {
    return fail(
      `${show(text)} has a local part (before '@') of ${localOctets} octets; the limit is ${MAX_LOCAL_OCTETS}`,
    );
  }
  if (domain.value.length > MAX_DOMAIN_OCTETS) {
    return fail(
      `${show(text)} has a domain of ${domain.value.length} octets; the limit is ${MAX_DOMAIN_OCTETS}`,
    );
  }
  const email = `${local.value}@${domain.value}`;
  const octets = Buffer.byteLength(email, 'utf8');
  if (octets > MAX_ADDRESS_OCTETS) {
    return fail(`${show(text)} is ${octets} octets long; the limit is ${MAX_ADDRESS_OCTETS}`);
  }
  return {
    ok: true,
    email,
    address: email.toLowerCase(),
    smtputf8: NON_ASCII.test(local.value),
    displayName,
  };
}

type Part = { ok: true; value: string } | { ok: false; problem: string };

function fail(problem: string): { ok: false; problem: string } {
  return { ok: false, problem };
}

/**
 * Finds the addr-spec in a cell: the whole cell, or what is between the angle brackets of
 * `Name <a@b.c>`. Refuses a cell that holds a list (a separator or a second bracketed address
 * outside quotes) and unbalanced quotes or brackets.
 */
function splitMailbox(
  text: string,
): { ok: true; spec: string; displayName: string | null } | { ok: false; problem: string } {
  let inQuote = false;
  let escaped = false;
  let open = -1;
  let close = -1;
  let groups = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (escaped) {
      escaped = false;
    } else if (inQuote) {
      if (c === '\\') escaped = true;
      else if (c === '"') inQuote = false;
    } else if (c === '"') {
      inQuote = true;
    } else if (c === ',' || c === ';') {
      return countAt(splitUnquoted(text, /[,;]/u)) > 1
        ? fail(`${show(text)} holds more than one address separated by '${c}'; ${ONE_PER_ROW}`)
        : fail(`${show(text)} contains '${c}' outside quotes; remove it`);
    } else if (c === '<') {
      if (open > close) return fail(`${show(text)} has a '<' inside '<…>'`);
      open = i;
      groups++;
    } else if (c === '>') {
      if (open <= close) return fail(`${show(text)} has a '>' without a '<' before it`);
      close = i;
    }
  }
  if (inQuote || escaped) {
    return fail(`${show(text)} has a '"' that is never closed`);
  }
  if (open > close) {
    return fail(`${show(text)} has a '<' that is never closed with '>'`);
  }
  if (groups === 0) {
    return { ok: true, spec: text, displayName: null };
  }
  if (groups > 1) {
    return fail(`${show(text)} holds more than one '<address>'; ${ONE_PER_ROW}`);
  }
  if (close !== text.length - 1) {
    return fail(`${show(text)} has text after '>'; write it as Name <address>`);
  }
  const phrase = text.slice(0, open).trim();
  if (unquotedIndexes(phrase, '@').length > 0) {
    return fail(
      `${show(text)} holds more than one address (one in the name before '<'); ${ONE_PER_ROW}, or quote the name`,
    );
  }
  return {
    ok: true,
    spec: text.slice(open + 1, close).trim(),
    displayName: phrase === '' ? null : unquotePhrase(phrase),
  };
}

function normaliseLocal(local: string, text: string): Part {
  if (local === '') {
    return fail(`${show(text)} has nothing before the '@'`);
  }
  let value = NON_ASCII.test(local) ? local.normalize('NFC') : local;
  if (value.startsWith('"')) {
    // splitMailbox saw the quotes balanced, so the first unescaped quote after this one closes it.
    const end = closingQuote(value);
    if (end !== value.length - 1) {
      return fail(`${show(text)} has a quoted local part followed by more text; quote all of it or none`);
    }
    if (value.includes('\t')) {
      return fail(`${show(text)} has a tab inside its quoted local part; remove it`);
    }
    const inner = value.slice(1, -1).replace(/\\(.)/gu, '$1');
    if (isDotAtom(inner)) {
      value = inner;
    }
    return { ok: true, value };
  }
  if (value.includes('"')) {
    return fail(`${show(text)} has a '"' inside its local part; quote the whole local part or remove it`);
  }
  if (value.startsWith('.') || value.endsWith('.') || value.includes('..')) {
    return fail(
      `${show(text)} has a local part that starts or ends with a dot, or has two dots in a row; ` +
        'fix the address (or quote the local part if the mailbox really is spelled so)',
    );
  }
  if (!isDotAtom(value)) {
    return fail(`${show(text)} has a character not allowed in a local part; fix the address`);
  }
  return { ok: true, value };
}

function normaliseDomain(domain: string, text: string): Part {
  if (domain === '') {
    return fail(`${show(text)} has nothing after the '@'`);
  }
  if (domain.startsWith('[')) {
    return fail(`${show(text)} has an IP address literal as its domain; use a domain name`);
  }
  let ascii: string;
  if (NON_ASCII.test(domain)) {
    if (!IDN_ASCII_PART.test(domain.replace(/\P{ASCII}/gu, ''))) {
      return fail(`${show(text)} has a character not allowed in a domain name`);
    }
    ascii = domainToASCII(domain);
    if (ascii === '') {
      return fail(`${show(text)} has an internationalised domain that is not valid (IDNA)`);
    }
  } else {
    ascii = domain.toLowerCase();
  }
  if (ascii.endsWith('.')) {
    return fail(`${show(text)} has a domain ending with a dot; remove it`);
  }
  const labels = ascii.split('.');
  if (labels.length < 2) {
    return fail(`${show(text)} has a domain without a dot; a list address needs a full domain name`);
  }
  for (const label of labels) {
    if (label === '') {
      return fail(`${show(text)} has an empty part (two dots in a row, or a leading dot) in its domain`);
    }
    if (label.length > MAX_LABEL_OCTETS) {
      return fail(
        `${show(text)} has a domain part of ${label.length} octets; the limit is ${MAX_LABEL_OCTETS}`,
      );
    }
    if (!LABEL.test(label)) {
      return fail(
        `${show(text)} has an invalid domain part ${show(label)}: only letters, digits and inner hyphens`,
      );
    }
  }
  if (/^[0-9]+$/.test(labels[labels.length - 1]!)) {
    return fail(`${show(text)} has a domain that looks like an IP address; use a domain name`);
  }
  return { ok: true, value: ascii };
}

function isDotAtom(value: string): boolean {
  if (value === '' || WHITESPACE.test(value)) return false;
  return value.split('.').every((atom) => ATOM.test(atom));
}

/** Index of the quote closing the quoted string that starts at index 0, or -1. */
function closingQuote(value: string): number {
  for (let i = 1; i < value.length; i++) {
    if (value[i] === '\\') i++;
    else if (value[i] === '"') return i;
  }
  return -1;
}

/** Calls `test` on every character outside double quotes; true if it ever answers true. */
function hasUnquoted(text: string, test: (c: string) => boolean): boolean {
  let inQuote = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inQuote && c === '\\') i++;
    else if (c === '"') inQuote = !inQuote;
    else if (!inQuote && test(c)) return true;
  }
  return false;
}

function unquotedIndexes(text: string, wanted: string): number[] {
  const found: number[] = [];
  let inQuote = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inQuote && c === '\\') i++;
    else if (c === '"') inQuote = !inQuote;
    else if (!inQuote && c === wanted) found.push(i);
  }
  return found;
}

function splitUnquoted(text: string, separator: RegExp): string[] {
  const parts: string[] = [];
  let inQuote = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inQuote && c === '\\') i++;
    else if (c === '"') inQuote = !inQuote;
    else if (!inQuote && separator.test(c)) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

/** How many pieces look like an address, to tell a list of addresses from a stray character. */
function countAt(parts: readonly string[]): number {
  return parts.filter((part) => part.includes('@')).length;
}

/** `"Doe, Jane"` → `Doe, Jane`; an unquoted phrase keeps its words with single spaces. */
function unquotePhrase(phrase: string): string {
  return phrase
    .replace(/"((?:[^"\\]|\\.)*)"/gu, (_all, inner: string) => inner.replace(/\\(.)/gu, '$1'))
    .replace(/\s+/gu, ' ')
    .trim();
}

function describeControl(c: string): string {
  switch (c) {
    case '\r':
      return 'CR';
    case '\n':
      return 'LF';
    case '\u0000':
      return 'NUL';
    default:
      return `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
  }
}

/** The value as an operator can read it: quoted, escapes and invisible characters visible, cut when very long. */
function show(value: string): string {
  const cut = value.length > 80 ? `${value.slice(0, 77)}…` : value;
  return revealFormatCharacters(JSON.stringify(cut));
}
