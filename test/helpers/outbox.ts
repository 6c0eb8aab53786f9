/**
 * What the file transport wrote (`NEWSLETTER_TRANSPORT=file:./outbox`): per recipient, the
 * envelope sender it recorded (Return-Path, the VERP address), the Message-ID and the
 * List-Unsubscribe header, read from the .eml files as a mail client would see them.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

export interface OutboxMessage {
  file: string;
  to: string;
  returnPath: string | null;
  messageId: string;
  listUnsubscribe: string;
  raw: string;
}

export function readOutbox(dir: string): Map<string, OutboxMessage> {
  const byRecipient = new Map<string, OutboxMessage>();
  for (const name of readdirSync(dir).filter((file) => file.endsWith('.eml'))) {
    const file = path.join(dir, name);
    const raw = readFileSync(file, 'latin1');
    const headers = raw.slice(0, raw.search(/\r?\n\r?\n/)).replace(/\r?\n[ \t]+/g, ' ');
    const field = (key: string): string | null => {
      const match = new RegExp(`^${key}:\\s*(.*)$`, 'im').exec(headers);
      return match?.[1]?.trim() ?? null;
    };
    const to = (field('To') ?? '').replace(/^.*<|>.*$/g, '').toLowerCase();
    byRecipient.set(to, {
      file,
      to,
      returnPath: field('Return-Path')?.replace(/^<|>$/g, '') ?? null,
      messageId: field('Message-ID') ?? '',
      listUnsubscribe: field('List-Unsubscribe') ?? '',
      raw,
    });
  }
  return byRecipient;
}
