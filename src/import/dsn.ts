/**
 * Reads a delivery status notification (RFC 3464): a multipart/report whose
 * message/delivery-status part holds one block of per-message fields, then one block per
 * recipient (Final-Recipient, Action, Status, Diagnostic-Code, …). RFC 6533's
 * message/global-delivery-status (UTF-8 addresses) is read the same way.
 *
 * A message without such a part (an out-of-office reply, a person answering the newsletter) is
 * not a DSN: null, and the caller leaves it alone. Loaded only by `bounces import` (mailparser).
 */
import { createHash } from 'node:crypto';
import { simpleParser } from 'mailparser';

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

export interface Dsn {
  /** The DSN's Message-ID, or `sha256:<hex>` of its bytes when it has none. */
  id: string;
  recipients: DsnRecipient[];
}

const STATUS_PARTS = new Set(['message/delivery-status', 'message/global-delivery-status']);
const STATUS_CODE = /\b([245]\.\d{1,3}\.\d{1,3})\b/;

export async function parseDsn(raw: Buffer): Promise<Dsn | null> {
  const parsed = await simpleParser(raw, {
    // Without this mailparser folds the status part into the text and it is lost to us.
    keepDeliveryStatus: true,
    skipHtmlToText: true,
    skipTextToHtml: true,
    skipImageLinks: true,
  });
  const part = parsed.attachments.find((attachment) =>
    STATUS_PARTS.has(attachment.contentType.toLowerCase()),
  );
  if (!part) return null;
  const blocks = fieldBlocks(part.content.toString('utf8'));
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
  const messageId = parsed.messageId?.trim();
  return {
    id: messageId ? messageId : `sha256:${createHash('sha256').update(raw).digest('hex')}`,
    recipients,
  };
}

/**
 * The status part's blocks (separated by blank lines), each a map of lower-cased field names to
 * values, continuation lines unfolded. A field given twice keeps its first value.
 */
function fieldBlocks(text: string): Map<string, string>[] {
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
function typedValue(value: string): string {
  const semicolon = value.indexOf(';');
  return (semicolon === -1 ? value : value.slice(semicolon + 1)).trim();
}
