/**
 * One message, built once to the exact bytes every transport hands over: the SMTP transport
 * sends them as `raw`, sendmail pipes them, the outbox writes them. Built with nodemailer's
 * MailComposer; loaded only with a transport (see index.ts).
 */
import { domainToASCII } from 'node:url';
import addressparser from 'nodemailer/lib/addressparser';
import DKIM from 'nodemailer/lib/dkim';
import MailComposer from 'nodemailer/lib/mail-composer';
import { encodeWords } from 'nodemailer/lib/mime-funcs';
import { domainOf } from '../domain/message-id.js';
import type { OutgoingMessage } from '../engine/ports.js';

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

type HeaderValue = string | { prepared: true; foldLines: true; value: string };

/**
 * The complete RFC 5322 message, CRLF line endings. File and URL access are refused: every
 * part is a string we built, and a `path` sneaking in through a template must not read a file.
 */
export async function composeMessage(
  message: OutgoingMessage,
  options: ComposeOptions = {},
): Promise<Buffer> {
  const headers: Record<string, HeaderValue> = {};
  for (const [key, value] of Object.entries(message.headers)) headers[key] = prepareHeader(value);
  const composer = new MailComposer({
    from: message.from,
    to: message.to,
    ...(message.replyTo ? { replyTo: message.replyTo } : {}),
    subject: message.subject,
    html: message.html,
    text: message.text,
    headers,
    messageId: message.messageId,
    newline: 'windows',
    disableFileAccess: true,
    disableUrlAccess: true,
  });
  const bytes = await composer.compile().build();
  return options.dkim ? signDkim(bytes, options.dkim, message.from) : bytes;
}

/**
 * Prepends a DKIM-Signature (relaxed/relaxed, rsa-sha256) to the composed bytes. Signing here,
 * not with the transport's `dkim` option: nodemailer would then wrap the very stream whose end the
 * SMTP transport watches to tell `before-data` from `data-sent` (see smtp.ts).
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

/** MAIL FROM is the address of the From header; RCPT TO is the one recipient. */
export function envelopeOf(message: OutgoingMessage): Envelope {
  const parsed = addressparser(message.from, { flatten: true });
  const from = parsed.find((entry) => entry.address)?.address ?? message.from.trim();
  const to = addressparser(message.to, { flatten: true }).find((entry) => entry.address)?.address;
  return { from: asciiDomain(from), to: [asciiDomain(to ?? message.to.trim())] };
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

/**
 * nodemailer encodes a non-ASCII header value as one encoded word, angle brackets included,
 * which breaks `List-Id: Nöws <news.example.org>`: only the text outside `<…>` may be encoded.
 * Line breaks never reach a header.
 */
function prepareHeader(value: string): HeaderValue {
  const clean = value.replace(/[\r\n]+/g, ' ');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: ASCII is exactly what is tested for
  if (/^[\x00-\x7f]*$/.test(clean) || !/<[^<>]*>/.test(clean)) return clean;
  const encoded = clean
    .split(/(<[^<>]*>)/)
    .map((part) => (part.startsWith('<') ? part : encodePhrase(part)))
    .join('');
  return { prepared: true, foldLines: true, value: encoded };
}

function encodePhrase(part: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: ASCII is exactly what is tested for
  if (/^[\x00-\x7f]*$/.test(part)) return part;
  const lead = /^\s*/.exec(part)?.[0] ?? '';
  const trail = /\s*$/.exec(part)?.[0] ?? '';
  return `${lead}${encodeWords(part.trim(), 'Q', 52, true)}${trail}`;
}
