/**
 * NEWSLETTER_SMTP_TLS and NEWSLETTER_SMTP_CA, for src/config.ts: parsed, and the CA file read and
 * checked at load time, so that a typo stops every command before any work (exit 3), naming the
 * variable, rather than surfacing as a certificate error in the middle of a run.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parseSmtpTlsPolicy, type SmtpTlsPolicy } from './domain/smtp-tls-policy.js';
import type { ReadSetting } from './config.js';
import type { TransportSpec } from './domain/transport-spec.js';

// node:crypto only when a CA is set: the every-minute idle cron run (src/cli/idle.ts) loads no crypto.
const require = createRequire(import.meta.url);

export interface SmtpTlsConfig {
  /** Null: not set, and the transport decides (`required` with a password). */
  policy: SmtpTlsPolicy | null;
  /** The private CA, trusted besides the system CAs and NODE_EXTRA_CA_CERTS. */
  ca: { path: string; pem: string } | null;
}

export function smtpTlsConfig(
  get: ReadSetting,
  cwd: string,
  transport: TransportSpec | null,
  problems: string[],
): SmtpTlsConfig {
  const policyValue = get('NEWSLETTER_SMTP_TLS');
  let policy: SmtpTlsPolicy | null = null;
  if (policyValue !== null) {
    policy = parseSmtpTlsPolicy(policyValue);
    if (policy === null) {
      problems.push(
        `NEWSLETTER_SMTP_TLS "${policyValue}" must be required (AUTH only over TLS), opportunistic, or none (a loopback relay without AUTH).`,
      );
    }
  }
  // Never a password in clear: `none` is for relays that take mail without AUTH.
  if (policy === 'none' && transport?.kind === 'smtp' && transport.password !== null) {
    problems.push(
      'NEWSLETTER_SMTP_TLS is none, but NEWSLETTER_TRANSPORT has a password, which would cross the network in clear: use required, or remove the user and password for a relay without AUTH.',
    );
  }
  return { policy, ca: caOf(get('NEWSLETTER_SMTP_CA'), cwd, problems) };
}

function caOf(value: string | null, cwd: string, problems: string[]): SmtpTlsConfig['ca'] {
  if (value === null || value === '') return null;
  const file = path.resolve(cwd, value);
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    problems.push(
      code === 'ENOENT'
        ? `NEWSLETTER_SMTP_CA ${file} does not exist; set it to the PEM file of the CA that signed the SMTP server's certificate.`
        : `NEWSLETTER_SMTP_CA ${file} cannot be read (${code}); check its permissions.`,
    );
    return null;
  }
  try {
    const { X509Certificate } = require('node:crypto') as typeof import('node:crypto');
    new X509Certificate(pem);
  } catch {
    problems.push(
      `NEWSLETTER_SMTP_CA ${file} is not a PEM certificate (expected "-----BEGIN CERTIFICATE-----").`,
    );
    return null;
  }
  return { path: file, pem };
}
