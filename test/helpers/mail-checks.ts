/**
 * Checks of delivered bytes by independent parsers: DKIM with mailauth (a real verifier, given
 * the public key by a DNS resolver stub, as a receiver would get it from DNS), and the MIME
 * structure with mailparser. Nothing here reads our own code's idea of what it sent.
 */
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { dkimVerify } from 'mailauth';
import { simpleParser } from 'mailparser';

export interface TestDkimKey {
  /** PEM (PKCS#8) private key. */
  privateKey: string;
  /** The TXT record a domain would publish: `v=DKIM1; k=rsa; p=…`. */
  txt: string;
  /** A resolver for mailauth that knows `<selector>._domainkey.<domain>` and nothing else. */
  resolver(selector: string, domain: string): (name: string, type: string) => Promise<string[][]>;
  /** Writes the private key to `file` (mode 0600) and returns the path. */
  write(file: string): string;
}

export function makeDkimKey(bits = 2048): TestDkimKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const p = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  const txt = `v=DKIM1; k=rsa; p=${p}`;
  return {
    privateKey: pem,
    txt,
    resolver: (selector, domain) => async (name, type) => {
      if (type === 'TXT' && name.toLowerCase() === `${selector}._domainkey.${domain}`.toLowerCase()) {
        // A long TXT record comes back as several strings, as DNS splits it at 255 characters.
        return [txt.match(/.{1,255}/g) ?? [txt]];
      }
      throw Object.assign(new Error(`queryTxt ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
    },
    write(file) {
      writeFileSync(file, pem, { mode: 0o600 });
      return file;
    },
  };
}

export interface DkimCheck {
  result: string;
  signingDomain: string | undefined;
  selector: string | undefined;
  /** The h= tag, lower-cased: the header fields the signature covers. */
  signedHeaders: string[];
  /** Every signature found (a message should carry exactly one). */
  signatures: number;
}

export async function verifyDkim(
  raw: Buffer,
  resolver: (name: string, type: string) => Promise<string[][]>,
): Promise<DkimCheck> {
  const outcome = await dkimVerify(raw, { resolver });
  const first = outcome.results[0] as
    | {
        status?: { result?: string };
        signingDomain?: string;
        selector?: string;
        signingHeaders?: { keys?: string };
      }
    | undefined;
  return {
    result: first?.status?.result ?? 'none',
    signingDomain: first?.signingDomain,
    selector: first?.selector,
    signedHeaders: (first?.signingHeaders?.keys ?? '')
      .split(':')
      .map((k) => k.trim().toLowerCase())
      .filter(Boolean),
    signatures: outcome.results.filter(
      (r) => (r as { status?: { result?: string } }).status?.result !== 'none',
    ).length,
  };
}

/**
 * The content types of the message's leaf parts, in order, walking multiparts: each part is
 * handed to mailparser on its own, so its own Content-Type header decides what it is.
 */
export async function mimeLeaves(raw: Buffer): Promise<string[]> {
  const parsed = await simpleParser(raw, { skipHtmlToText: true, skipTextToHtml: true });
  const type = parsed.headers.get('content-type') as
    | { value: string; params: Record<string, string> }
    | undefined;
  const value = type?.value.toLowerCase() ?? 'text/plain';
  if (!value.startsWith('multipart/')) return [value];
  const boundary = type?.params.boundary;
  if (!boundary) throw new Error(`${value} without a boundary`);
  const text = raw.toString('latin1');
  const delimiter = `--${boundary}`;
  const pieces = text.split(new RegExp(`\\r?\\n?${escapeRegExp(delimiter)}(?:--)?[ \\t]*\\r?\\n?`));
  // pieces[0] is the preamble (with the headers), the last is the epilogue.
  const parts = pieces.slice(1, -1).filter((piece) => piece.trim() !== '');
  const leaves: string[] = [];
  for (const part of parts) leaves.push(...(await mimeLeaves(Buffer.from(part, 'latin1'))));
  return leaves;
}

/** How many times each header field occurs in the message's own header (case-insensitive names). */
export async function headerCounts(raw: Buffer): Promise<Map<string, number>> {
  const parsed = await simpleParser(raw, { skipHtmlToText: true, skipTextToHtml: true });
  const counts = new Map<string, number>();
  for (const line of parsed.headerLines) counts.set(line.key, (counts.get(line.key) ?? 0) + 1);
  return counts;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
