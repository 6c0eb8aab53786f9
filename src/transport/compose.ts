/**
 * One message, built once to the exact bytes every transport hands over: the SMTP transport
 * sends them as `raw`, sendmail pipes them, the outbox writes them. Built with nodemailer's
 * MailComposer; loaded only with a transport (see index.ts).
 */
import addressparser from 'nodemailer/lib/addressparser';
import MailComposer from 'nodemailer/lib/mail-composer';
import { encodeWords } from 'nodemailer/lib/mime-funcs';
import type { OutgoingMessage } from '../engine/ports.js';

export type Envelope = {
  from: string;
  to: string[];
};

type HeaderValue = string | { prepared: true; foldLines: true; value: string };

/**
 * The complete RFC 5322 message, CRLF line endings. File and URL access are refused: every
 * part is a string we built, and a `path` sneaking in through a template must not read a file.
 */
export async function composeMessage(message: OutgoingMessage): Promise<Buffer> {
  const headers: Record<string, HeaderValue> = {};
  for (const [key, value] of Object.entries(message.headers)) headers[key] = prepareHeader(value);
  const composer = new MailComposer({
    from: message.from,
    to: message.to,
    subject: message.subject,
    html: message.html,
    text: message.text,
    headers,
    messageId: message.messageId,
    newline: 'windows',
    disableFileAccess: true,
    disableUrlAccess: true,
  });
  return composer.compile().build();
}

/** MAIL FROM is the address of the From header; RCPT TO is the one recipient. */
export function envelopeOf(message: OutgoingMessage): Envelope {
  const parsed = addressparser(message.from, { flatten: true });
  const from = parsed.find((entry) => entry.address)?.address ?? message.from.trim();
  const to = addressparser(message.to, { flatten: true }).find((entry) => entry.address)?.address;
  return { from, to: [to ?? message.to.trim()] };
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
