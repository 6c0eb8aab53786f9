/**
 * The one way in: `createTransport(spec)` imports only the implementation the spec names, so
 * that a `send-due` with nothing due never loads nodemailer. `createCountingTransport()` (the
 * dry run) loads nothing at all.
 */
import type { TransportSpec } from '../domain/transport-spec.js';
import type { Transport } from '../engine/ports.js';
import type { SendmailOptions } from './sendmail.js';
import type { SmtpOptions } from './smtp.js';

export type { CountingOptions, CountingStats, CountingTransport } from './counting.js';
export { createCountingTransport } from './counting.js';
export { TransportCheckError } from './check-error.js';
export type { ComposeOptions, DkimOptions } from './compose.js';
export type { SmtpOptions } from './smtp.js';
export type { SendmailOptions } from './sendmail.js';

/** Options of every kind in one object; each transport reads its own. All are optional. `dkim` is read by all. */
export type TransportOptions = SmtpOptions & SendmailOptions;

export async function createTransport(
  spec: TransportSpec,
  options: TransportOptions = {},
): Promise<Transport> {
  switch (spec.kind) {
    case 'smtp': {
      const { createSmtpTransport } = await import('./smtp.js');
      return createSmtpTransport(spec, options);
    }
    case 'sendmail': {
      const { createSendmailTransport } = await import('./sendmail.js');
      return createSendmailTransport(spec, options);
    }
    case 'file': {
      const { createFileOutbox } = await import('./file-outbox.js');
      return createFileOutbox(spec, options);
    }
  }
}
