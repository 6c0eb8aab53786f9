/**
 * What an incoming message says, before anything is trusted: who it was addressed to (where a
 * VERP token may be), whether it is a delivery status notification (RFC 3464, also RFC 6533's
 * global form) or an ARF feedback report (RFC 5965), the recipients it names, and the headers of
 * the message it returns (its Message-ID, its Return-Path). Pure; src/bounces/authenticate.ts
 * decides what of it counts.
 */
import { createHash } from 'node:crypto';
import { type DsnRecipient, dsnRecipientsOf, fieldBlocks, typedValue } from '../import/dsn-fields.js';
import { firstField, leafParts, type MimePart, parseMessage, readHeaderBlock, utf8 } from './mime-parts.js';

export interface FeedbackReport {
  /** Feedback-Type, lower-cased: abuse, fraud, virus, other, not-spam, auth-failure, … */
  type: string;
  /** Original-Rcpt-To values, without `<>`: the complaining recipient(s). */
  originalRcptTo: string[];
  /** Original-Mail-From: the envelope sender of the reported message (our VERP address). */
  originalMailFrom: string | null;
  /** User-Agent of the report's generator, for the suppression's reason. */
  userAgent: string | null;
}

export interface IncomingReport {
  /** The message's Message-ID, or `sha256:<hex>` of its bytes when it has none (of the id, when it is huge). */
  id: string;
  /** Top-level X-Original-To, Delivered-To and To values: where a VERP token may be. */
  recipientFields: string[];
  kind: 'dsn' | 'arf' | 'other';
  /** The DSN's recipient blocks (empty for the others). */
  dsnRecipients: DsnRecipient[];
  feedback: FeedbackReport | null;
  /** Message-IDs of the returned message (message/rfc822, text/rfc822-headers, their global forms). */
  returnedMessageIds: string[];
  /** The returned message's Return-Path values: our VERP envelope sender, if the MTA kept it. */
  returnedReturnPaths: string[];
}

const STATUS_TYPES = new Set(['message/delivery-status', 'message/global-delivery-status']);
const RETURNED_TYPES = new Set([
  'message/rfc822',
  'message/global',
  'text/rfc822-headers',
  'message/global-headers',
]);
/** Returned Message-IDs looked at per report: each costs a lookup. */
const MAX_RETURNED_IDS = 4;

export function readReport(raw: Buffer): IncomingReport {
  const text = raw.toString('latin1');
  const message = parseMessage(text);
  const recipientFields = ['x-original-to', 'delivered-to', 'to'].flatMap(
    (name) => message.fields.get(name) ?? [],
  );
  const messageId = firstField(message.fields, 'message-id')?.trim();
  const report: IncomingReport = {
    id: reportId(messageId, raw),
    recipientFields,
    kind: 'other',
    dsnRecipients: [],
    feedback: null,
    returnedMessageIds: [],
    returnedReturnPaths: [],
  };
  if (!message.contentType.startsWith('multipart/')) return report;
  const parts = leafParts(message);
  const status = parts.find((part) => STATUS_TYPES.has(part.contentType));
  const feedback = parts.find((part) => part.contentType === 'message/feedback-report');
  if (status) {
    report.kind = 'dsn';
    report.dsnRecipients = dsnRecipientsOf(utf8(status.body));
  } else if (feedback) {
    report.kind = 'arf';
    report.feedback = feedbackOf(utf8(feedback.body));
  } else {
    return report;
  }
  for (const part of parts) {
    if (!RETURNED_TYPES.has(part.contentType)) continue;
    returnedHeaders(part, report);
  }
  return report;
}

/** Longer Message-IDs are hashed: a stranger's header must not fill the suppression list. */
const MAX_ID = 250;

function reportId(messageId: string | undefined, raw: Buffer): string {
  const sha256 = (bytes: Buffer | string) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  if (!messageId) return sha256(raw);
  const id = utf8(messageId);
  return id.length > MAX_ID ? sha256(id) : id;
}

function returnedHeaders(part: MimePart, report: IncomingReport): void {
  const { fields } = readHeaderBlock(part.body);
  for (const value of fields.get('message-id') ?? []) {
    const id = /<[^<>\s]+>/.exec(value)?.[0] ?? value.trim();
    if (
      id !== '' &&
      report.returnedMessageIds.length < MAX_RETURNED_IDS &&
      !report.returnedMessageIds.includes(id)
    )
      report.returnedMessageIds.push(utf8(id));
  }
  report.returnedReturnPaths.push(...(fields.get('return-path') ?? []));
}

function feedbackOf(text: string): FeedbackReport {
  // One block of fields (RFC 5965 section 3.1); fieldBlocks keeps the first of a repeated field,
  // so Original-Rcpt-To, which may repeat, is read again below.
  const first = fieldBlocks(text)[0] ?? new Map<string, string>();
  const rcptTo: string[] = [];
  for (const line of text.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const match = /^original-rcpt-to\s*:(.*)$/i.exec(line);
    if (match?.[1]) rcptTo.push(typedValue(match[1]).replace(/^<|>$/g, '').trim());
  }
  return {
    type: (first.get('feedback-type') ?? '').trim().toLowerCase(),
    originalRcptTo: rcptTo.filter((address) => address !== ''),
    originalMailFrom: first.get('original-mail-from')?.replace(/^<|>$/g, '').trim() ?? null,
    userAgent: first.get('user-agent') ?? null,
  };
}
