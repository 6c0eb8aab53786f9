/**
 * The bounce mailbox over IMAP, for `newsletter bounces fetch` (imapflow, by nodemailer's
 * author): connect with NEWSLETTER_IMAP (src/imap-config.ts), list the folder's messages by UID,
 * fetch them a batch at a time (each at most MAX_MESSAGE_BYTES: bounded memory however full the
 * folder), and move the ones handled out of it. Messages are moved only after they were handled,
 * so a crash in between leaves them in place to be handled again, which changes nothing
 * (src/bounces/handle-incoming.ts counts once per delivery).
 *
 * Every failure becomes an error with the exit code that fits, and never names the user or the
 * password: a refused login or a certificate the system does not trust is configuration (3);
 * a server that cannot be reached, times out or drops the connection is transient (9), and the
 * next cron run tries again.
 */
import { rootCertificates } from 'node:tls';
import { ImapFlow } from 'imapflow';
import { ExitCode } from '../domain/exit-codes.js';
import { ConfigError, NewsletterError } from '../domain/errors.js';
import { printable } from '../domain/printable.js';
import type { ImapConfig } from '../imap-config.js';
import { MAX_MESSAGE_BYTES } from './mbox-splitter.js';

export interface ImapMessage {
  uid: number;
  raw: Buffer;
  /** Longer than MAX_MESSAGE_BYTES: `raw` is its beginning. */
  truncated: boolean;
}

export interface ImapMailbox {
  /** The UIDs of the folder's messages now, in order. */
  uids(): Promise<number[]>;
  fetch(uids: readonly number[]): Promise<ImapMessage[]>;
  /** Moves messages (by UID) into `folder`, created first when missing. */
  move(uids: readonly number[], folder: string): Promise<void>;
  close(): Promise<void>;
}

const TIMEOUTS = { connectionTimeout: 30_000, greetingTimeout: 30_000, socketTimeout: 120_000 };

/** Node's and imapflow's codes for a server out of reach, slow or gone: try again later. */
const TRANSIENT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EPIPE',
  'NoConnection',
  'EConnectionClosed',
  'ClosedAfterConnectText',
  'ClosedAfterConnectTLS',
  'CONNECT_TIMEOUT',
  'GREETING_TIMEOUT',
  'UPGRADE_TIMEOUT',
  'ETIMEOUT',
  'ETHROTTLE',
]);

export async function openImapMailbox(config: ImapConfig): Promise<ImapMailbox> {
  const client = new ImapFlow({
    host: config.host,
    port: config.port,
    secure: config.tls === 'implicit',
    // imap:// to another host must upgrade; to loopback it stays plain (src/imap-config.ts).
    ...(config.tls === 'implicit' ? {} : { doSTARTTLS: config.tls === 'starttls' }),
    auth: { user: config.user, pass: config.password },
    // Its default logger writes JSON to stdout, which belongs to --json.
    logger: false,
    ...TIMEOUTS,
    // A server cannot make us hold more than one message's worth (plus framing) at once.
    maxLiteralSize: MAX_MESSAGE_BYTES + 64 * 1024,
    ...(config.ca ? { tls: { ca: [...rootCertificates, config.ca.pem] } } : {}),
  });
  // A connection that fails between commands emits 'error'; the command under way rejects.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (error) {
    throw describeImapError(error, config, 'connect');
  }
  try {
    await client.mailboxOpen(config.mailbox);
  } catch (error) {
    await client.logout().catch(() => undefined);
    throw describeImapError(error, config, 'open');
  }
  const known = new Set<string>();

  const guard = async <T>(step: string, work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (error) {
      throw describeImapError(error, config, step);
    }
  };

  return {
    uids: () =>
      guard('search', async () => {
        const found = await client.search({ all: true }, { uid: true });
        return Array.isArray(found) ? [...found].sort((a, b) => a - b) : [];
      }),
    fetch: (uids) =>
      guard('fetch', async () => {
        if (uids.length === 0) return [];
        const messages = await client.fetchAll(
          uids.join(','),
          { uid: true, size: true, source: { start: 0, maxLength: MAX_MESSAGE_BYTES } },
          { uid: true },
        );
        return messages
          .filter((message) => message.source !== undefined)
          .map((message) => ({
            uid: message.uid,
            raw: message.source as Buffer,
            truncated: (message.size ?? 0) > MAX_MESSAGE_BYTES,
          }));
      }),
    move: (uids, folder) =>
      guard('move', async () => {
        if (uids.length === 0) return;
        if (!known.has(folder)) {
          await ensureFolder(client, folder);
          known.add(folder);
        }
        const moved = await client.messageMove(uids.join(','), folder, { uid: true });
        if (moved === false) throw new Error(`the server did not move the messages to ${folder}`);
      }),
    async close() {
      await client.logout().catch(() => client.close());
    },
  };
}

async function ensureFolder(client: ImapFlow, folder: string): Promise<void> {
  const folders = await client.list();
  if (folders.some((entry) => entry.path === folder)) return;
  await client.mailboxCreate(folder);
}

interface ImapErrorShape {
  code?: string;
  authenticationFailed?: boolean;
  tlsFailed?: boolean;
  mailboxMissing?: boolean;
  serverResponseCode?: string;
  responseText?: string;
  message?: string;
}

/** The error a person can act on, with its exit code; never the user or the password. */
export function describeImapError(error: unknown, config: ImapConfig, step: string): NewsletterError {
  if (error instanceof NewsletterError) return error;
  const e = (error ?? {}) as ImapErrorShape;
  const where = config.display;
  const said = serverWords(e, config);
  if (e.authenticationFailed || e.serverResponseCode === 'AUTHENTICATIONFAILED') {
    return new ConfigError(`The IMAP server ${where} refused NEWSLETTER_IMAP's user and password${said}.`, [
      'Check them (percent-encode @ : / % in the URL as %40 %3A %2F %25); nothing was read.',
    ]);
  }
  if (e.tlsFailed || /CERT|SELF_SIGNED|ALTNAME|UNABLE_TO_VERIFY/i.test(e.code ?? '')) {
    return new ConfigError(`TLS with the IMAP server ${where} failed (${e.code ?? 'TLS error'})${said}.`, [
      'If the server uses a private CA, set NEWSLETTER_IMAP_CA to its PEM file; check that the host name matches the certificate.',
    ]);
  }
  if (/STARTTLS/i.test(e.message ?? '') && config.tls === 'starttls') {
    return new ConfigError(
      `The IMAP server ${where} does not offer STARTTLS, and imap:// to a remote host requires it.`,
      ['Use imaps:// (TLS on port 993) so that the password never crosses the network in clear.'],
    );
  }
  if (step === 'open' && (e.mailboxMissing || e.serverResponseCode === 'NONEXISTENT')) {
    return new ConfigError(`The folder "${config.mailbox}" does not exist on ${where}${said}.`, [
      'Fix the folder in NEWSLETTER_IMAP (the path after the host, e.g. /INBOX).',
    ]);
  }
  if (TRANSIENT_CODES.has(e.code ?? '')) {
    return new NewsletterError(
      `The IMAP server ${where} could not be reached or dropped the connection (${e.code}) while trying to ${step}.`,
      ExitCode.transient,
      ['Nothing was lost: what was not moved out of the folder is read again by the next run.'],
    );
  }
  return new NewsletterError(
    `The IMAP server ${where} failed to ${step}${said || `: ${safeText(e.message ?? String(error), config)}`}.`,
    ExitCode.transient,
    ['Nothing was lost: what was not moved out of the folder is read again by the next run.'],
  );
}

function serverWords(e: ImapErrorShape, config: ImapConfig): string {
  const text = e.responseText?.trim();
  return text ? ` (the server said: ${safeText(text, config)})` : '';
}

/**
 * The server's words, one line, without the user (the password is masked by the redactor too);
 * control characters are made visible when printed (src/domain/printable.ts).
 */
function safeText(text: string, config: ImapConfig): string {
  const masked = text.split(config.password).join('***').split(config.user).join('***');
  return printable(masked).slice(0, 300);
}
