/**
 * Reads a delivery status notification (RFC 3464): a multipart/report whose
 * message/delivery-status part holds one block of per-message fields, then one block per
 * recipient (Final-Recipient, Action, Status, Diagnostic-Code, …). RFC 6533's
 * message/global-delivery-status (UTF-8 addresses) is read the same way.
 *
 * A message without such a part (an out-of-office reply, a person answering the newsletter) is
 * not a DSN: null, and the caller leaves it alone. The commands no longer use it: every incoming
 * message goes through src/bounces/handle-incoming.ts, which reads reports (DSNs and ARF alike)
 * with src/bounces/report.ts and needs no mailparser; it stays as a second reading of the same
 * DSNs in test/integration/bounces-read.test.ts.
 */
import { createHash } from 'node:crypto';
import { simpleParser } from 'mailparser';
import { type DsnRecipient, dsnRecipientsOf } from './dsn-fields.js';

export type { DsnRecipient } from './dsn-fields.js';
export { dsnRecipientsOf, fieldBlocks, typedValue } from './dsn-fields.js';

export interface Dsn {
  /** The DSN's Message-ID, or `sha256:<hex>` of its bytes when it has none. */
  id: string;
  recipients: DsnRecipient[];
}

const STATUS_PARTS = new Set(['message/delivery-status', 'message/global-delivery-status']);

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
  const recipients = dsnRecipientsOf(part.content.toString('utf8'));
  const messageId = parsed.messageId?.trim();
  return {
    id: messageId ? messageId : `sha256:${createHash('sha256').update(raw).digest('hex')}`,
    recipients,
  };
}
