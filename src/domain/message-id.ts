import { hmacSha256 } from './hmac-key.js';

/**
 * The Message-ID of one newsletter to one recipient: `<nNEWSLETTER.MAC@from-domain>`, MAC being
 * 32 hex digits of an HMAC-SHA256 under NEWSLETTER_SECRET over (newsletter, address).
 * Deterministic, so that an `unknown` delivery can be looked up in the server's logs and a
 * `reconcile --resend` reuses it (the ledger stores it; a resend reads it from there, so a key
 * rotation in between changes nothing).
 *
 * Keyed (issue 18): a bounce report that lost its VERP token still authenticates when the headers
 * it returns carry one of our Message-IDs and its Final-Recipient is that delivery's address
 * (src/bounces/authenticate.ts). With an unkeyed hash anybody could compute the Message-ID of a
 * guessed address and forge its bounce; under the secret only the recipient (and the servers the
 * message passed) ever see it. Without a secret (a dry run, a preview with no configuration) the
 * key is empty: such ids are never sent, so nothing accepts them.
 */
export function messageIdFor(
  secret: string | null,
  newsletterId: number,
  address: string,
  fromDomain: string,
): string {
  const mac = hmacSha256(secret ?? '')
    .update(`message-id\n${newsletterId}\n${address}`)
    .digest('hex')
    .slice(0, 32);
  return `<n${newsletterId}.${mac}@${fromDomain}>`;
}

/**
 * The newsletter a Message-ID of ours names (`<nNEWSLETTER.…`), or null for any other. Only a
 * pointer: the ledger row it leads to must carry that very Message-ID, keyed under our secret.
 */
export function newsletterIdOfMessageId(messageId: string): number | null {
  const match = /^<n([1-9][0-9]{0,14})\./.exec(messageId);
  return match ? Number(match[1]) : null;
}

/** What a newsletter's Message-IDs are made from: the secret and the From: address's domain. */
export interface MessageIdKey {
  secret: string | null;
  fromDomain: string;
}

/** `messageIdFor` with the key as one value, as a claim carries it (src/engine/store.ts). */
export function messageIdOf(key: MessageIdKey, newsletterId: number, address: string): string {
  return messageIdFor(key.secret, newsletterId, address, key.fromDomain);
}

/** The domain of an address or a `"Name" <user@domain>` header value; `localhost` when none. */
export function domainOf(from: string): string {
  const match = /@([^\s>]+)>?\s*$/.exec(from.trim());
  return match?.[1]?.toLowerCase() ?? 'localhost';
}
