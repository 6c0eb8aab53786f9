/**
 * One message, built once to the exact bytes every transport hands over: the SMTP transport
 * writes them as chunks (mime.ts builds them from encodings prepared once per newsletter),
 * sendmail pipes them, the outbox writes them. DKIM signs the whole message when a key is
 * configured. Loaded only with a transport (see index.ts).
 */
import { domainToASCII, domainToUnicode } from 'node:url';
// nodemailer internals: not its public API, free to change in any release, so package.json pins
// the exact version they were tested with (no ^), and test/unit/nodemailer-surface.test.ts fails
// when the installed copy is another or what we use of them changed. Upgrade on purpose.
import addressparser from 'nodemailer/lib/addressparser';
import DKIM from 'nodemailer/lib/dkim';
import { domainOf } from '../domain/message-id.js';
import type { OutgoingMessage } from '../domain/message.js';
import { messageBytes, messagePieces, type Piece } from './mime.js';

/** NEWSLETTER_DKIM_*, as every transport receives it (see TransportOptions). */
export interface DkimOptions {
  /** PEM text of the RSA private key. A secret: never logged, never in an error. */
  privateKey: string;
  selector: string;
  /** The d= domain; null: the domain of the message's From address. */
  domain: string | null;
}

export interface ComposeOptions {
  /** Sign every message with this key (DESIGN, "The body"); unsigned without it. */
  dkim?: DkimOptions | null | undefined;
}

/**
 * The header fields the signature covers. Named explicitly rather than trusting a library
 * default: RFC 8058 one-click unsubscribe counts only when List-Unsubscribe and
 * List-Unsubscribe-Post are both signed, and a receiver must be able to trust From, Subject and
 * the body structure. A field named here but absent from the message is simply not signed.
 */
export const DKIM_SIGNED_FIELDS = [
  'From',
  'Reply-To',
  'Subject',
  'Date',
  'Message-ID',
  'To',
  'MIME-Version',
  'Content-Type',
  'Content-Transfer-Encoding',
  'List-Id',
  'List-Unsubscribe',
  'List-Unsubscribe-Post',
] as const;

export type Envelope = {
  from: string;
  to: string[];
};

/**
 * The complete RFC 5322 message, CRLF line endings, in one buffer (sendmail, the outbox, counts).
 */
export async function composeMessage(
  message: OutgoingMessage,
  options: ComposeOptions = {},
): Promise<Buffer> {
  const bytes = messageBytes(message);
  return options.dkim ? signDkim(bytes, options.dkim, message.from) : bytes;
}

/**
 * The message for the SMTP client: unsigned, as pieces (mime.ts), built synchronously from the
 * newsletter's prepared encodings and copied by the client straight into the buffer it writes; a
 * DKIM signature needs the whole message, so a signed one comes back as a single buffer.
 */
export function composePieces(
  message: OutgoingMessage,
  options: ComposeOptions = {},
): Piece[] | Promise<Piece[]> {
  if (!options.dkim) return messagePieces(message);
  return composeMessage(message, options).then((signed) => [signed]);
}

/**
 * Prepends a DKIM-Signature (relaxed/relaxed, rsa-sha256) to the composed bytes, once for every
 * transport: the signature covers exactly the bytes that go out.
 *
 * nodemailer's signer quietly sends the message unsigned when the key cannot sign; a message that
 * should be signed and is not would then land in spam without a word, so that is an error here.
 */
async function signDkim(bytes: Buffer, dkim: DkimOptions, from: string): Promise<Buffer> {
  const domainName = dkim.domain ?? domainToASCII(domainOf(from));
  const signer = new DKIM({
    domainName,
    keySelector: dkim.selector,
    privateKey: dkim.privateKey,
    headerFieldNames: DKIM_SIGNED_FIELDS.join(':'),
  });
  const chunks: Buffer[] = [];
  for await (const chunk of signer.sign(bytes)) chunks.push(chunk as Buffer);
  const signed = Buffer.concat(chunks);
  if (!signed.subarray(0, 16).toString('latin1').startsWith('DKIM-Signature:')) {
    throw new Error(
      `DKIM signing for ${domainName} (selector ${dkim.selector}) failed: check NEWSLETTER_DKIM_KEY`,
    );
  }
  return signed;
}

/**
 * MAIL FROM is the message's VERP return path (a bare ASCII address built by render/return-path.ts),
 * else the address of the From header; RCPT TO is the one recipient.
 */
export function envelopeOf(message: OutgoingMessage): Envelope {
  const from = message.returnPath ?? envelopeFrom(message.from);
  return { from, to: [envelopeAddress(message.to)] };
}

// A bare ASCII address, as the ledger stores recipients: nothing to parse.
const BARE_ADDRESS = /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+$/;
let lastFrom: { header: string; address: string } | null = null;

function envelopeFrom(header: string): string {
  // One From per newsletter: parsed once, not per message.
  if (lastFrom?.header !== header) lastFrom = { header, address: envelopeAddress(header) };
  return lastFrom.address;
}

function envelopeAddress(value: string): string {
  if (BARE_ADDRESS.test(value)) return value;
  const address = addressparser(value, { flatten: true }).find((entry) => entry.address)?.address;
  return asciiDomain(address ?? value.trim());
}

/**
 * The envelope as written on the wire. Under SMTPUTF8 the domains go in Unicode too (RFC 6531
 * allows it, and a UTF-8 local part with an A-label domain puzzles some servers), as nodemailer
 * did; otherwise they are A-labels.
 */
export function wireEnvelope(envelope: Envelope, smtpUtf8: boolean): Envelope {
  if (!smtpUtf8) return envelope;
  return { from: unicodeDomain(envelope.from), to: envelope.to.map(unicodeDomain) };
}

function unicodeDomain(address: string): string {
  const at = address.lastIndexOf('@');
  if (at === -1 || !/(^|\.)xn--/i.test(address.slice(at + 1))) return address;
  const unicode = domainToUnicode(address.slice(at + 1));
  return unicode === '' ? address : `${address.slice(0, at)}@${unicode}`;
}

/**
 * `news@bücher.example` → `news@xn--bcher-kva.example`: an internationalised domain goes on the
 * wire as its A-label, so that only a non-ASCII local part needs SMTPUTF8. Recipients are
 * already stored that way (domain/address.ts); this covers a From typed in Unicode.
 */
function asciiDomain(address: string): string {
  const at = address.lastIndexOf('@');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: ASCII is exactly what is tested for
  if (at === -1 || /^[\x00-\x7f]*$/.test(address.slice(at + 1))) return address;
  const ascii = domainToASCII(address.slice(at + 1));
  return ascii === '' ? address : `${address.slice(0, at)}@${ascii}`;
}

/** True when an envelope address has a non-ASCII local part: it can only travel over SMTPUTF8. */
export function needsSmtpUtf8(envelope: Envelope): boolean {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: ASCII is exactly what is tested for
  return [envelope.from, ...envelope.to].some((address) => !/^[\x00-\x7f]*$/.test(address));
}
