import { createHash } from 'node:crypto';

/**
 * The Message-ID of one newsletter to one recipient. Deterministic, so that an `unknown`
 * delivery can be looked up in the server's logs and a `reconcile --resend` reuses it.
 */
export function messageIdFor(newsletterId: number, address: string, fromDomain: string): string {
  const hash = createHash('sha256').update(`${newsletterId}\n${address}`).digest('hex').slice(0, 32);
  return `<n${newsletterId}.${hash}@${fromDomain}>`;
}

/** The domain of an address or a `"Name" <user@domain>` header value; `localhost` when none. */
export function domainOf(from: string): string {
  const match = /@([^\s>]+)>?\s*$/.exec(from.trim());
  return match?.[1]?.toLowerCase() ?? 'localhost';
}
