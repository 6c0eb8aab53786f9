/**
 * The bytes of one message: RFC 5322 headers, then MIME multipart/alternative with a text/plain
 * and a text/html part, both UTF-8, CRLF line endings. Built here rather than by a MIME library
 * because of what a newsletter is: one body, tens of kilobytes, sent to a million people with a
 * few short values changed.
 *
 * - A personalised message (`message.parts`) is encoded in pieces (qp.ts): the newsletter's
 *   literal text once, cached by its template, and per recipient only the values. The message is
 *   a list of pieces pointing at the cached literals, with the header block as a string: nothing
 *   the size of the body is encoded or allocated per message; the SMTP client copies the pieces
 *   once, into a buffer it reuses (write-buffers.ts). A part whose text is mostly non-Latin goes
 *   out in base64 instead (a third of the size), encoded per message.
 * - A message without `parts` (a hand-made one) is encoded whole, the same way.
 * - Header values are encoded (RFC 2047) and folded (76 columns) with nodemailer's own functions,
 *   as its MailComposer did; only the layout is ours. A value with a word too long to fold within
 *   998 octets goes out as encoded words (header-fold.ts).
 *
 * The result never has a line that starts with "." (see qp.ts), and its boundary contains "=_",
 * which neither quoted-printable nor base64 text can contain.
 */
import { randomBytes } from 'node:crypto';
// nodemailer internals: not its public API, free to change in any release, so package.json pins
// the exact version they were tested with (no ^), and test/unit/nodemailer-surface.test.ts fails
// when the installed copy is another or what we use of them changed. Upgrade on purpose.
import { encodeWords } from 'nodemailer/lib/mime-funcs';
import addressparser from 'nodemailer/lib/addressparser';
import MimeNode from 'nodemailer/lib/mime-node';
import type { BodyTemplate, FilledTemplate, OutgoingMessage } from '../domain/message.js';
import { encodedText, fitsLineLimit, fold } from './header-fold.js';
import { encodeBase64Lines, encodeQp, preferBase64 } from './qp.js';

const BOUNDARY = `=_nl_${randomBytes(12).toString('hex')}`;
const CRLF = '\r\n';
const SOFT_BREAK = '=\r\n';

type Encoding = 'quoted-printable' | 'base64';

/** What a body template becomes once: its literals encoded, soft breaks around every slot included. */
type PreparedTemplate = { encoding: 'quoted-printable'; literals: Buffer[] } | { encoding: 'base64' };

const prepared = new WeakMap<BodyTemplate, PreparedTemplate>();

/**
 * A piece of a message: bytes, or text that goes out as UTF-8 (the header block; encoded values,
 * which are ASCII). The SMTP client copies pieces straight into the buffer it writes
 * (write-buffers.ts), so a recipient's few values never become buffers of their own.
 */
export type Piece = Buffer | string;

/** Arrays returned by messagePieces and messageChunks: no line of theirs starts with "." (see isDotSafe). */
const dotSafe = new WeakSet<readonly Piece[]>();

/**
 * True for the pieces of a message built here: no line starts with "." (quoted-printable and
 * base64 bodies, see qp.ts; header lines start with a name or, folded, with a blank; boundary
 * lines with "--"), so SMTP needs no dot-stuffing and the client need not scan ~50 kB for it.
 */
export function isDotSafe(pieces: readonly Piece[]): boolean {
  return dotSafe.has(pieces);
}

/** The message as pieces, in order; their concatenation (strings as UTF-8) is the message. */
export function messagePieces(message: OutgoingMessage): Piece[] {
  const text = message.parts?.text ?? message.text;
  const html = message.parts?.html ?? message.html;
  const textEncoding = encodingOf(text);
  const htmlEncoding = encodingOf(html);
  const pieces: Piece[] = [
    `${headerBlock(message)}${CRLF}${CRLF}--${BOUNDARY}${CRLF}${partHeader('plain', textEncoding)}`,
  ];
  pushBody(pieces, text, textEncoding);
  pieces.push(HTML_OPENING[htmlEncoding]);
  pushBody(pieces, html, htmlEncoding);
  pieces.push(CLOSE);
  dotSafe.add(pieces);
  return pieces;
}

/** The message as chunks, in order; their concatenation is the message. */
export function messageChunks(message: OutgoingMessage): Buffer[] {
  const chunks = messagePieces(message).map((piece) =>
    typeof piece === 'string' ? Buffer.from(piece, 'utf8') : piece,
  );
  dotSafe.add(chunks);
  return chunks;
}

/** The message as one buffer. */
export function messageBytes(message: OutgoingMessage): Buffer {
  return Buffer.concat(messageChunks(message));
}

const CLOSE = Buffer.from(`${CRLF}--${BOUNDARY}--${CRLF}`, 'latin1');

function partHeader(subtype: 'plain' | 'html', encoding: Encoding): string {
  return `Content-Type: text/${subtype}; charset=utf-8${CRLF}Content-Transfer-Encoding: ${encoding}${CRLF}${CRLF}`;
}

/** Between the text part and the HTML part: the same bytes for every message. */
const HTML_OPENING: Record<Encoding, Buffer> = {
  'quoted-printable': Buffer.from(
    `${CRLF}--${BOUNDARY}${CRLF}${partHeader('html', 'quoted-printable')}`,
    'latin1',
  ),
  base64: Buffer.from(`${CRLF}--${BOUNDARY}${CRLF}${partHeader('html', 'base64')}`, 'latin1'),
};

// ---- the body -----------------------------------------------------------------------------------

const EMPTY = Buffer.alloc(0);

function encodingOf(part: FilledTemplate | string): Encoding {
  if (typeof part === 'string') return preferBase64(part) ? 'base64' : 'quoted-printable';
  return prepare(part.template).encoding;
}

/** Appends a part's body, in `encoding` (encodingOf's answer), to `pieces`. */
function pushBody(pieces: Piece[], part: FilledTemplate | string, encoding: Encoding): void {
  if (typeof part === 'string') {
    pieces.push(encoding === 'base64' ? base64Of(part) : encodeQp(part));
    return;
  }
  const template = prepare(part.template);
  if (template.encoding === 'base64') {
    pieces.push(base64Of(fillText(part.template, part.values)));
    return;
  }
  // Each distinct value is encoded once, however many slots it fills, and made bytes once: a
  // buffer is copied faster than a string is written, and a value fills a dozen slots.
  const values = part.values.map((value) => Buffer.from(encodeQp(value), 'latin1'));
  const { literals } = template;
  pieces.push(literals[0] as Buffer);
  const { slots } = part.template;
  for (let i = 0; i < slots.length; i++) {
    pieces.push(values[slots[i] as number] ?? EMPTY, literals[i + 1] as Buffer);
  }
}

function prepare(template: BodyTemplate): PreparedTemplate {
  let ready = prepared.get(template);
  if (ready) return ready;
  const { literals, slots } = template;
  if (preferBase64(literals.join(''))) {
    ready = { encoding: 'base64' };
  } else {
    // Every value starts a line and is followed by a soft break: see qp.ts.
    const last = literals.length - 1;
    ready = {
      encoding: 'quoted-printable',
      literals: literals.map((literal, i) =>
        Buffer.from(
          `${i > 0 ? SOFT_BREAK : ''}${encodeQp(literal)}${i < last && slots.length > 0 ? SOFT_BREAK : ''}`,
          'latin1',
        ),
      ),
    };
  }
  prepared.set(template, ready);
  return ready;
}

function fillText(template: BodyTemplate, values: readonly string[]): string {
  let out = template.literals[0] ?? '';
  for (let i = 0; i < template.slots.length; i++) {
    out += (values[template.slots[i] as number] ?? '') + (template.literals[i + 1] ?? '');
  }
  return out;
}

function base64Of(text: string): Buffer {
  return Buffer.from(encodeBase64Lines(Buffer.from(text.replace(/\r\n|\r|\n/g, CRLF), 'utf8')), 'latin1');
}

// ---- the headers --------------------------------------------------------------------------------

/**
 * In MailComposer's order: the extra headers, From, To, Reply-To, Subject, Message-ID, Date,
 * MIME-Version, Content-Type. Values that are the same for a whole newsletter (From, List-Id, …)
 * are encoded once and remembered.
 */
function headerBlock(message: OutgoingMessage): string {
  let block = '';
  const { headers } = message;
  for (const key in headers) {
    const value = headers[key] as string;
    const line = key === 'List-Unsubscribe' ? extraHeader(key, value) : remembered(key, value, extraHeader);
    if (line !== '') block += `${line}${CRLF}`;
  }
  block += `${remembered('From', message.from, addressHeader)}${CRLF}`;
  block += `${addressHeader('To', message.to)}${CRLF}`;
  if (message.replyTo) block += `${remembered('Reply-To', message.replyTo, addressHeader)}${CRLF}`;
  block += `${subjectHeader(message.subject)}${CRLF}`;
  block += `Message-ID: ${messageIdValue(message.messageId)}${CRLF}`;
  block += `Date: ${dateValue()}${CRLF}`;
  block += 'MIME-Version: 1.0\r\n';
  return `${block}Content-Type: multipart/alternative;${CRLF} boundary="${BOUNDARY}"`;
}

/** Encoded header lines by name, then value: a handful per newsletter (From, List-Id, …). */
const cache = new Map<string, Map<string, string>>();

function remembered(key: string, value: string, build: (key: string, value: string) => string): string {
  let byValue = cache.get(key);
  if (!byValue) {
    byValue = new Map();
    cache.set(key, byValue);
  }
  let line = byValue.get(value);
  if (line === undefined) {
    // The bound only matters for a very long-lived process sending many newsletters.
    if (byValue.size > 100) byValue.clear();
    line = build(key, value);
    byValue.set(value, line);
  }
  return line;
}

// Printable ASCII (and tab): the value goes out as written, only folded.
const PLAIN = /^[\x20-\x7e\t]*$/;
const PLAIN_ADDRESS = /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+$/;
const PLAIN_MESSAGE_ID = /^<[\x21-\x3b\x3d\x3f-\x7e]+>$/;

/**
 * One node, made once, encodes every header value: `MimeNode.encodeHeaderValue` (static) builds
 * a node per call, and a node draws random bytes for a boundary this never uses (~5 µs a
 * subject). The instance method reads only the node's options, so the output is the same.
 */
const headerEncoder = new MimeNode(false, { baseBoundary: 'header-encoder' });

function encodeHeaderValue(key: string, value: string): string {
  return headerEncoder.encodeHeaderValue(key, value);
}

function addressHeader(key: string, value: string): string {
  const clean = value.replace(/[\r\n]+/g, ' ');
  if (key === 'To' && PLAIN_ADDRESS.test(clean)) return fold(`To: ${clean}`);
  const line = fold(`${key}: ${encodeHeaderValue(key, clean)}`);
  return fitsLineLimit(line) ? line : fold(`${key}: ${encodedMailboxes(clean)}`);
}

/**
 * A display name too long to fold as written becomes encoded words; the address stays as it is
 * (domain/address.ts caps an address at 254 octets, so it always fits a line).
 */
function encodedMailboxes(value: string): string {
  return addressparser(value, { flatten: true })
    .map(({ name, address }) => (name ? `${encodedText(name)} <${address}>` : address))
    .join(', ');
}

/**
 * The Subject line, remembered for the last subject: a newsletter whose subject names no field
 * sends the same one to everybody, and encoding a non-ASCII subject costs several µs a message.
 * A personalised subject differs per recipient and is encoded each time.
 */
let lastSubject: string | null = null;
let lastSubjectLine = '';

function subjectHeader(value: string): string {
  if (value !== lastSubject) {
    lastSubjectLine = textHeader('Subject', value);
    lastSubject = value;
  }
  return lastSubjectLine;
}

function textHeader(key: string, value: string): string {
  const clean = value.replace(/[\r\n]+/g, ' ');
  const line = PLAIN.test(clean)
    ? fold(`${key}: ${clean}`)
    : fold(`${key}: ${encodeHeaderValue(key, clean)}`);
  // A word of a subject (or of a CSV value merged into it) too long for one line: see header-fold.ts.
  return fitsLineLimit(line) ? line : fold(`${key}: ${encodedText(clean)}`);
}

function messageIdValue(value: string): string {
  return PLAIN_MESSAGE_ID.test(value) ? value : encodeHeaderValue('Message-ID', value);
}

/**
 * List-Unsubscribe, List-Id, …: under nodemailer's spelling of the name (`List-ID`). A non-ASCII
 * value is encoded; in one that holds `<…>` (List-Id's phrase and id) only the text outside the
 * angle brackets, since an encoded word around the brackets would hide the id. Line breaks
 * never reach a header. An empty value leaves the header out, as MailComposer did.
 */
function extraHeader(key: string, value: string): string {
  const name = headerName(key);
  const clean = value.replace(/[\r\n]+/g, ' ');
  if (clean.trim() === '') return '';
  if (PLAIN.test(clean)) {
    const line = fold(`${name}: ${clean}`);
    if (fitsLineLimit(line)) return line;
  }
  if (!/<[^<>]*>/.test(clean)) {
    const line = fold(`${name}: ${encodeHeaderValue(name, clean)}`);
    return fitsLineLimit(line) ? line : fold(`${name}: ${encodedText(clean)}`);
  }
  const line = fold(`${name}: ${encodeOutsideBrackets(clean, false)}`);
  return fitsLineLimit(line) ? line : fold(`${name}: ${encodeOutsideBrackets(clean, true)}`);
}

/** Encodes the text outside `<…>` (all of it when `always`, else only non-ASCII phrases). */
function encodeOutsideBrackets(value: string, always: boolean): string {
  return value
    .split(/(<[^<>]*>)/)
    .map((part) => (part.startsWith('<') ? part : encodePhrase(part, always)))
    .join('');
}

function encodePhrase(part: string, always: boolean): string {
  // A separator between two `<…>` (`, ` in List-Unsubscribe) is structure, never encoded.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: ASCII is exactly what is tested for
  if (/^[\s,]*$/.test(part) || (!always && /^[\x00-\x7f]*$/.test(part))) return part;
  const lead = /^\s*/.exec(part)?.[0] ?? '';
  const trail = /\s*$/.exec(part)?.[0] ?? '';
  return `${lead}${always ? encodedText(part.trim()) : encodeWords(part.trim(), 'Q', 52, true)}${trail}`;
}

const names = new Map<string, string>();

/** nodemailer's header name normalisation: `list-id` → `List-ID`, `mime-version` → `MIME-Version`. */
function headerName(key: string): string {
  let name = names.get(key);
  if (name === undefined) {
    name = normaliseName(key);
    if (names.size < 100) names.set(key, name);
  }
  return name;
}

function normaliseName(key: string): string {
  return (
    key
      // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is removed
      .replace(/[\s\x00-\x20\x7f:]/g, '')
      .toLowerCase()
      .replace(
        /^X-SMTPAPI$|^(MIME|DKIM|ARC|BIMI)\b|^OTP(?=-Token$)|^[a-z]|-(SPF|FBL|ID|MD5)$|-[a-z]/gi,
        (c) => c.toUpperCase(),
      )
  );
}

let dateSecond = -1;
let dateText = '';

function dateValue(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString().replace(/GMT/, '+0000');
  }
  return dateText;
}
