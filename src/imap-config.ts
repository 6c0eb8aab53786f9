/**
 * NEWSLETTER_IMAP and its companions, for src/config.ts: the bounce mailbox `bounces fetch`
 * reads. Parsed at load time, every problem named with its variable, never with its value (the
 * URL carries a password).
 *
 * - `imaps://user:pass@host[:993]/Folder`: TLS from the first byte.
 * - `imap://user:pass@host[:143]/Folder`: STARTTLS, required (with a verified certificate), so
 *   that the password never crosses a network in clear; except to this machine itself
 *   (localhost, 127.0.0.0/8, ::1), where the connection stays plain: it never leaves the host,
 *   and a local Dovecot's certificate is usually Debian's self-signed snakeoil one.
 * - User and password are percent-decoded (`bounce%40example.org`, `p%2Fss`); the folder too
 *   (default INBOX), as the server names it (`INBOX/Bounces` or `INBOX.Bounces`).
 * - NEWSLETTER_IMAP_DONE_FOLDER (default `newsletter-processed`): reports handled (acted on, or
 *   already counted) move there. NEWSLETTER_IMAP_UNMATCHED_FOLDER (default
 *   `newsletter-unmatched`): everything else (forgeries, replies, out-of-office mail) moves
 *   there, for a person to look at. Both are created when missing.
 * - NEWSLETTER_IMAP_CA: the PEM file of a private CA for the server's certificate (besides the
 *   system CAs and NODE_EXTRA_CA_CERTS).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { ReadSetting } from './config.js';

export type ImapTls = 'implicit' | 'starttls' | 'none';

export interface ImapConfig {
  host: string;
  port: number;
  tls: ImapTls;
  /** Secrets: never printed (the password is in the redactor; the user is never named). */
  user: string;
  password: string;
  /** The password as the URL spelt it (partly percent-encoded, maybe): masked too. */
  passwordAsWritten: string;
  /** The folder read, decoded. */
  mailbox: string;
  doneFolder: string;
  unmatchedFolder: string;
  ca: { path: string; pem: string } | null;
  /** `imaps://host:port/Folder`, without credentials: what messages may show. */
  display: string;
}

export const DEFAULT_DONE_FOLDER = 'newsletter-processed';
export const DEFAULT_UNMATCHED_FOLDER = 'newsletter-unmatched';

const EXAMPLE = 'e.g. imaps://bounces%40example.org:PASSWORD@imap.example.org/INBOX';

export function imapConfig(get: ReadSetting, cwd: string, problems: string[]): ImapConfig | null {
  const value = get('NEWSLETTER_IMAP');
  const doneFolder = folderSetting(get('NEWSLETTER_IMAP_DONE_FOLDER'), DEFAULT_DONE_FOLDER);
  const unmatchedFolder = folderSetting(get('NEWSLETTER_IMAP_UNMATCHED_FOLDER'), DEFAULT_UNMATCHED_FOLDER);
  const ca = caOf(get('NEWSLETTER_IMAP_CA'), cwd, problems);
  if (value === null || value === '') return null;
  const parsed = parseImapUrl(value);
  if ('problem' in parsed) {
    problems.push(`NEWSLETTER_IMAP ${parsed.problem} (${EXAMPLE}).`);
    return null;
  }
  if (doneFolder === parsed.mailbox || unmatchedFolder === parsed.mailbox) {
    problems.push(
      `NEWSLETTER_IMAP_DONE_FOLDER and NEWSLETTER_IMAP_UNMATCHED_FOLDER must differ from the folder NEWSLETTER_IMAP reads (${parsed.mailbox}): mail moved there would be read again.`,
    );
  }
  return { ...parsed, doneFolder, unmatchedFolder, ca };
}

type ParsedUrl = Omit<ImapConfig, 'doneFolder' | 'unmatchedFolder' | 'ca'>;

/** The URL's parts, or what is wrong with it (never quoting it: it holds the password). */
export function parseImapUrl(value: string): ParsedUrl | { problem: string } {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return { problem: 'is not a URL' };
  }
  const scheme = url.protocol.replace(/:$/, '').toLowerCase();
  if (scheme !== 'imaps' && scheme !== 'imap') {
    return { problem: `must start with imaps:// (or imap:// with STARTTLS), not ${scheme}://` };
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (host === '') return { problem: 'has no host' };
  const port = url.port === '' ? (scheme === 'imaps' ? 993 : 143) : Number(url.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return { problem: 'has an invalid port' };
  if (url.search !== '' || url.hash !== '') {
    return {
      problem: 'has a ?query or #fragment; percent-encode "?" and "#" in the password as %3F and %23',
    };
  }
  const user = decoded(url.username);
  const password = decoded(url.password);
  if (user === null || password === null) {
    return { problem: 'has a user or password that is not valid percent-encoding (write % as %25)' };
  }
  if (user === '' || password === '') {
    return { problem: 'needs a user and a password; percent-encode @ : / in them (%40 %3A %2F)' };
  }
  const mailbox = decoded(url.pathname.replace(/^\//, ''));
  if (mailbox === null) return { problem: 'has a folder that is not valid percent-encoding' };
  const tls: ImapTls = scheme === 'imaps' ? 'implicit' : isLoopback(host) ? 'none' : 'starttls';
  const folder = mailbox === '' ? 'INBOX' : mailbox;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    host,
    port,
    tls,
    user,
    password,
    passwordAsWritten: url.password,
    mailbox: folder,
    display: `${scheme}://${shownHost}:${port}/${folder}`,
  };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function decoded(value: string): string | null {
  try {
    return decodeURIComponent(value);
  } catch {
    return null;
  }
}

function folderSetting(value: string | null, fallback: string): string {
  return value === null || value.trim() === '' ? fallback : value.trim();
}

function caOf(value: string | null, cwd: string, problems: string[]): ImapConfig['ca'] {
  if (value === null || value === '') return null;
  const file = path.resolve(cwd, value);
  try {
    const pem = readFileSync(file, 'utf8');
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
      problems.push(`NEWSLETTER_IMAP_CA ${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----).`);
      return null;
    }
    return { path: file, pem };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    problems.push(
      code === 'ENOENT'
        ? `NEWSLETTER_IMAP_CA ${file} does not exist; set it to the PEM file of the CA that signed the IMAP server's certificate.`
        : `NEWSLETTER_IMAP_CA ${file} cannot be read (${code}); check its permissions.`,
    );
    return null;
  }
}
