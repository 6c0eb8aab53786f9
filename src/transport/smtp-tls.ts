/**
 * The TLS side of an SMTP connection: which certificates are trusted, and what the server
 * showed (doctor reports it).
 *
 * Trust: the system CAs, plus NODE_EXTRA_CA_CERTS, plus NEWSLETTER_SMTP_CA when set. Node's `ca`
 * option replaces the whole default store (NODE_EXTRA_CA_CERTS included), so a private CA is
 * given together with the others, never instead of them.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';

/** What doctor shows of an encrypted connection. */
export interface PeerTls {
  /** `TLSv1.3`, `TLSv1.2`, … */
  version: string;
  /** The certificate's subject, e.g. `CN=smtp.example.org`. */
  subject: string;
  /** The certificate's notAfter; null when the server showed none. */
  validTo: Date | null;
}

export function tlsConnectOptions(host: string, caPem: string | null): tls.ConnectionOptions {
  return {
    ...(net.isIP(host) ? {} : { servername: host }),
    rejectUnauthorized: true,
    ...(caPem === null ? {} : { ca: [...tls.rootCertificates, ...nodeExtraCas(), caPem] }),
  };
}

export function peerTlsOf(socket: tls.TLSSocket): PeerTls {
  const certificate = socket.getPeerCertificate();
  const subject = certificate?.subject
    ? Object.entries(certificate.subject)
        .map(([key, value]) => `${key}=${Array.isArray(value) ? value.join('+') : value}`)
        .join(', ')
    : '(none)';
  const validTo = certificate?.valid_to ? new Date(certificate.valid_to) : null;
  return {
    version: socket.getProtocol() ?? 'TLS',
    subject,
    validTo: validTo && !Number.isNaN(validTo.getTime()) ? validTo : null,
  };
}

/**
 * NODE_EXTRA_CA_CERTS as Node read it at start-up. Node has already warned about a file it
 * could not read, so a failure here adds nothing and is ignored.
 */
function nodeExtraCas(): string[] {
  const file = process.env.NODE_EXTRA_CA_CERTS;
  if (!file) return [];
  try {
    return [readFileSync(file, 'utf8')];
  } catch {
    return [];
  }
}
