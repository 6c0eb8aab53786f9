/**
 * The fields of a delivery status notification's status part (RFC 3464): blocks of
 * `Name: value` lines, one per message and one per recipient. Plain text work, no MIME library:
 * `bounces receive` reads reports with this (src/bounces/report.ts) without loading mailparser,
 * and `parseDsn` (dsn.ts) with it.
 */

export interface DsnRecipient {
  /** As the DSN wrote it (Final-Recipient, else Original-Recipient), without the `rfc822;` type. */
  address: string;
  /** failed, delayed, delivered, relayed or expanded (lower-case). */
  action: string;
  /** RFC 3463 `x.y.z`; from Diagnostic-Code when Status is missing; '' when neither has one. */
  status: string;
  /** The Diagnostic-Code without its type (`smtp; `), on one line; '' when absent. */
  diagnostic: string;
}

const STATUS_CODE = /\b([245]\.\d{1,3}\.\d{1,3})\b/;

/**
 * The recipients of a delivery-status part's text (also used by src/bounces/report.ts, which
 * reads reports without mailparser).
 */
export function dsnRecipientsOf(statusText: string): DsnRecipient[] {
  const blocks = fieldBlocks(statusText);
  const recipients: DsnRecipient[] = [];
  for (const fields of blocks) {
    const address = typedValue(fields.get('final-recipient') ?? fields.get('original-recipient') ?? '');
    if (address === '') continue; // the per-message block, or a recipient block without an address
    const diagnostic = typedValue(fields.get('diagnostic-code') ?? '').replace(/\s+/g, ' ');
    const status =
      STATUS_CODE.exec(fields.get('status') ?? '')?.[1] ?? STATUS_CODE.exec(diagnostic)?.[1] ?? '';
    recipients.push({
      address: address.replace(/^<|>$/g, ''),
      action: (fields.get('action') ?? '').trim().toLowerCase(),
      status,
      diagnostic,
    });
  }
  return recipients;
}

/**
 * The status part's blocks (separated by blank lines), each a map of lower-cased field names to
 * values, continuation lines unfolded. A field given twice keeps its first value.
 */
export function fieldBlocks(text: string): Map<string, string>[] {
  return text
    .replace(/\r\n/g, '\n')
    .split(/\n[ \t]*\n/)
    .map((block) => {
      const fields = new Map<string, string>();
      for (const line of block.replace(/\n[ \t]+/g, ' ').split('\n')) {
        const colon = line.indexOf(':');
        if (colon <= 0) continue;
        const name = line.slice(0, colon).trim().toLowerCase();
        if (!fields.has(name)) fields.set(name, line.slice(colon + 1).trim());
      }
      return fields;
    })
    .filter((fields) => fields.size > 0);
}

/** `rfc822; ann@example.net` → `ann@example.net`; `smtp; 550 …` → `550 …`. */
export function typedValue(value: string): string {
  const semicolon = value.indexOf(';');
  return (semicolon === -1 ? value : value.slice(semicolon + 1)).trim();
}
