/**
 * What doctor says about an SMTP connection it opened: whether it was encrypted, with which TLS
 * version, whose certificate and until when. It never claims TLS it did not see: "STARTTLS when
 * offered" once hid a connection that carried the password in clear.
 */
import type { TransportSpec } from '../domain/transport-spec.js';
import type { TransportVerification } from '../engine/ports.js';
import { type CheckResult, ok, warning } from './types.js';

/** A certificate closer than this to its end is worth an operator's attention now. */
export const CERTIFICATE_WARNING_DAYS = 14;

const DAY_MS = 24 * 60 * 60 * 1000;

export function smtpConnectionCheck(
  spec: Extract<TransportSpec, { kind: 'smtp' }>,
  shown: string,
  seen: TransportVerification,
  now: number,
): CheckResult {
  const name = 'transport';
  const authenticated = seen.authenticated ? `, authenticated as ${spec.user ?? '(no user)'}` : '';
  if (seen.tls === null) {
    const message = `${shown}: connected WITHOUT encryption (NEWSLETTER_SMTP_TLS=${seen.tlsPolicy})${authenticated}; no mail was sent.`;
    if (seen.tlsPolicy === 'none' && isLoopback(spec.host)) return ok(name, message);
    return warning(
      name,
      seen.tlsPolicy === 'none'
        ? message
        : `${shown}: connected WITHOUT encryption: the server does not offer STARTTLS${authenticated}; no mail was sent.`,
      'Messages cross the network in clear. Enable STARTTLS on the server, or use smtps://; NEWSLETTER_SMTP_TLS=none is meant for a relay on this host (127.0.0.1).',
    );
  }
  const { version, subject, validTo } = seen.tls;
  const how = spec.secure ? 'TLS from the start' : 'STARTTLS';
  const until = validTo ? validTo.toISOString() : 'an unknown date';
  const message = `${shown}: connected over ${version} (${how}), certificate ${subject}, valid until ${until}${authenticated}; no mail was sent.`;
  if (validTo !== null) {
    const daysLeft = Math.floor((validTo.getTime() - now) / DAY_MS);
    if (daysLeft < CERTIFICATE_WARNING_DAYS) {
      return warning(
        name,
        `${message} The certificate expires in ${daysLeft} day${daysLeft === 1 ? '' : 's'}.`,
        `Renew the certificate of ${spec.host}: once it expires every send stops (exit 3) until it is.`,
      );
    }
  }
  return ok(name, message);
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}
