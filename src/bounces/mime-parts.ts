/**
 * Just enough MIME to read a report (RFC 3462/6522 multipart/report, DSN and ARF): a header block,
 * the parts of a multipart (recursively, a few levels deep), and a part's body with its
 * Content-Transfer-Encoding undone. Reports are what strangers send us, so this never throws on
 * bad input and never recurses without bound; it works on latin1 text, which maps each byte to
 * one character and back, so nothing is lost before a part is decoded.
 */

export interface HeaderBlock {
  /** Lower-cased field name → unfolded values, in order. */
  fields: Map<string, string[]>;
  /** Where the body starts in the text the block was read from. */
  bodyStart: number;
}

export interface MimePart {
  fields: Map<string, string[]>;
  /** `type/subtype`, lower-cased; `text/plain` when absent. */
  contentType: string;
  /** Content-Type parameters, names lower-cased. */
  params: Map<string, string>;
  /** The body as latin1 text, transfer encoding undone. */
  body: string;
}

const MAX_DEPTH = 4;
const MAX_PARTS = 64;

export function readHeaderBlock(text: string, from = 0): HeaderBlock {
  const fields = new Map<string, string[]>();
  let end = text.length;
  let bodyStart = text.length;
  const blank = /\r?\n\r?\n/g;
  blank.lastIndex = from;
  // A message with no body at all: the whole text is headers.
  if (text.startsWith('\n', from) || text.startsWith('\r\n', from)) {
    end = from;
    bodyStart = from + (text[from] === '\r' ? 2 : 1);
  } else {
    const match = blank.exec(text);
    if (match) {
      end = match.index;
      bodyStart = match.index + match[0].length;
    }
  }
  const unfolded = text.slice(from, end).replace(/\r?\n[ \t]+/g, ' ');
  for (const line of unfolded.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    const list = fields.get(name);
    if (list) list.push(value);
    else fields.set(name, [value]);
  }
  return { fields, bodyStart };
}

export function firstField(fields: Map<string, string[]>, name: string): string | null {
  return fields.get(name)?.[0] ?? null;
}

/** `multipart/report; report-type=feedback-report; boundary="x"` → type and parameters. */
export function parseContentType(value: string | null): { type: string; params: Map<string, string> } {
  const params = new Map<string, string>();
  if (value === null) return { type: 'text/plain', params };
  const semicolon = value.indexOf(';');
  const type = (semicolon === -1 ? value : value.slice(0, semicolon)).trim().toLowerCase() || 'text/plain';
  const rest = semicolon === -1 ? '' : value.slice(semicolon + 1);
  const param = /\s*([^=;\s]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))\s*;?/g;
  for (const match of rest.matchAll(param)) {
    const name = (match[1] ?? '').toLowerCase();
    const quoted = match[2];
    params.set(name, quoted !== undefined ? quoted.replace(/\\(.)/g, '$1') : (match[3] ?? ''));
  }
  return { type, params };
}

/** The whole message as one part (its own header block and body). */
export function parseMessage(text: string): MimePart {
  return partAt(text, 0);
}

/**
 * Every leaf part under `part` (itself, when it is no multipart), depth first. A message/rfc822
 * part is a leaf: its body is the returned message, read separately when needed.
 */
export function leafParts(part: MimePart): MimePart[] {
  const leaves: MimePart[] = [];
  const walk = (node: MimePart, depth: number): void => {
    if (leaves.length >= MAX_PARTS) return;
    const boundary = node.params.get('boundary');
    if (!node.contentType.startsWith('multipart/') || !boundary || depth >= MAX_DEPTH) {
      leaves.push(node);
      return;
    }
    for (const child of splitMultipart(node.body, boundary)) walk(child, depth + 1);
  };
  walk(part, 0);
  return leaves;
}

function partAt(text: string, from: number): MimePart {
  const { fields, bodyStart } = readHeaderBlock(text, from);
  const { type, params } = parseContentType(firstField(fields, 'content-type'));
  const encoding = (firstField(fields, 'content-transfer-encoding') ?? '').trim().toLowerCase();
  return { fields, contentType: type, params, body: decodeBody(text.slice(bodyStart), encoding) };
}

function splitMultipart(body: string, boundary: string): MimePart[] {
  const parts: MimePart[] = [];
  const delimiter = `--${boundary}`;
  let at = body.startsWith(delimiter) ? 0 : body.indexOf(`\n${delimiter}`);
  if (at === -1) return parts;
  if (at > 0) at += 1;
  while (parts.length < MAX_PARTS) {
    const lineEnd = body.indexOf('\n', at);
    if (lineEnd === -1) break;
    const marker = body.slice(at, lineEnd).trimEnd();
    if (marker.startsWith(`${delimiter}--`)) break;
    const next = body.indexOf(`\n${delimiter}`, lineEnd);
    const end = next === -1 ? body.length : next;
    // The line break before the next delimiter belongs to the delimiter (RFC 2046).
    const content = body.slice(lineEnd + 1, end).replace(/\r$/, '');
    parts.push(partAt(content, 0));
    if (next === -1) break;
    at = next + 1;
  }
  return parts;
}

function decodeBody(body: string, encoding: string): string {
  if (encoding === 'base64') {
    return Buffer.from(body.replace(/[^A-Za-z0-9+/=]/g, ''), 'base64').toString('latin1');
  }
  if (encoding === 'quoted-printable') {
    return body
      .replace(/=\r?\n/g, '')
      .replace(/=([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
  }
  return body;
}

/** latin1 text holding UTF-8 bytes → the text they spell (field values of a status part). */
export function utf8(latin1: string): string {
  return Buffer.from(latin1, 'latin1').toString('utf8');
}
