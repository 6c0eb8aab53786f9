/**
 * NEWSLETTER_SMTP_TLS: when the SMTP client encrypts. Whatever the policy, a password is only
 * ever sent over TLS (smtp-session.ts refuses AUTH on a plain connection): an attacker on the
 * path can strip STARTTLS from the server's EHLO reply, and "opportunistic" would then hand
 * them the password.
 *
 * - `required`: TLS or nothing (smtps://, or STARTTLS that succeeded). The default with a password.
 * - `opportunistic`: STARTTLS when the server offers it. The default without a password.
 * - `none`: never STARTTLS, for a loopback relay without AUTH (a local Postfix on 127.0.0.1).
 */
export const SMTP_TLS_POLICIES = ['required', 'opportunistic', 'none'] as const;

export type SmtpTlsPolicy = (typeof SMTP_TLS_POLICIES)[number];

export function parseSmtpTlsPolicy(value: string): SmtpTlsPolicy | null {
  const normalised = value.trim().toLowerCase();
  return (SMTP_TLS_POLICIES as readonly string[]).includes(normalised) ? (normalised as SmtpTlsPolicy) : null;
}

/** The policy when NEWSLETTER_SMTP_TLS is not set: a password makes TLS required. */
export function defaultSmtpTlsPolicy(hasPassword: boolean): SmtpTlsPolicy {
  return hasPassword ? 'required' : 'opportunistic';
}
