/**
 * Which delivery, if any, an incoming message is about (issue 18). Either is enough:
 *
 * 1. It was addressed to a valid VERP token (src/domain/return-path-token.ts): the envelope
 *    recipient the MTA gives us, X-Original-To, Delivered-To or To. A `u` token there is a mailto
 *    unsubscribe; a `b` token, a bounce or complaint. For an ARF report the reported message's
 *    envelope sender (Original-Mail-From) and, for any report, the returned message's Return-Path
 *    carry the `b` token as well: feedback loops mail their own address, not ours.
 * 2. For reports that lost the token: the returned headers carry one of our Message-IDs (keyed,
 *    src/domain/message-id.ts) and the report names that very delivery's address (Final-Recipient
 *    or Original-Recipient of a DSN, Original-Rcpt-To of ARF): the ledger row of the newsletter
 *    the Message-ID names to that address holds exactly that Message-ID, keyed under a key we hold
 *    (not the unkeyed hash of older mail). The row is found by its UNIQUE (newsletter, address)
 *    key: an index on Message-IDs would cost every claim an insert at a random place (issue 17).
 *
 * It then stands for that one delivery, whatever else the report names: a report listing 20,000
 * recipients acts on at most the one it authenticates for. A token costs a lookup by primary key;
 * at most a few per message are tried, so a message stuffed with token-shaped words cannot make
 * us do much work; the same holds for (Message-ID, address) pairs.
 */
import { normaliseAddress } from '../domain/address.js';
import { messageIdFor, newsletterIdOfMessageId } from '../domain/message-id.js';
import {
  type ParsedReturnPathToken,
  type ReturnPathPurpose,
  tokenMatches,
  tokensIn,
} from '../domain/return-path-token.js';
import type { ReportDelivery, ReportStore } from '../store/report-store.js';
import type { IncomingReport } from './report.js';

/** Tokens tried per message. */
const MAX_TOKENS = 6;
/**
 * (Message-ID, address) pairs looked up per message. Each of our messages has one recipient, so
 * a report of one names one or two addresses (Final- and Original-Recipient) and one Message-ID.
 */
const MAX_MESSAGE_ID_LOOKUPS = 8;

export interface Authenticated {
  purpose: ReturnPathPurpose;
  delivery: ReportDelivery;
  /** How: `token` (addressed to it, or its envelope sender), `message-id` (returned headers). */
  via: 'token' | 'message-id';
}

export async function authenticate(
  store: Pick<ReportStore, 'deliveryById' | 'deliveryTo'>,
  report: IncomingReport,
  keys: readonly string[],
  envelopeRecipients: readonly string[],
): Promise<Authenticated | null> {
  if (keys.length === 0) return null;
  let tried = 0;
  const check = async (
    tokens: ParsedReturnPathToken[],
    allowed: ReadonlySet<ReturnPathPurpose>,
  ): Promise<Authenticated | null> => {
    for (const token of tokens) {
      if (!allowed.has(token.purpose)) continue;
      if (tried >= MAX_TOKENS) return null;
      tried += 1;
      const delivery = await store.deliveryById(token.deliveryId);
      if (delivery && tokenMatches(keys, token, delivery))
        return { purpose: token.purpose, delivery, via: 'token' };
    }
    return null;
  };

  const addressed = await check(tokensIn([...envelopeRecipients, ...report.recipientFields]), BOTH);
  if (addressed) return addressed;
  if (report.kind === 'other') return null;

  // Our envelope sender, as the report quotes it: only ever a bounce token.
  const quoted = [...report.returnedReturnPaths];
  if (report.feedback?.originalMailFrom) quoted.push(report.feedback.originalMailFrom);
  const sender = await check(tokensIn(quoted), BOUNCE_ONLY);
  if (sender) return sender;

  const named = reportedAddresses(report);
  let lookups = 0;
  for (const messageId of report.returnedMessageIds) {
    const newsletterId = newsletterIdOfMessageId(messageId);
    if (newsletterId === null) continue;
    for (const address of named) {
      if (lookups >= MAX_MESSAGE_ID_LOOKUPS) return null;
      lookups += 1;
      const delivery = await store.deliveryTo(newsletterId, address);
      if (delivery && delivery.messageId === messageId && isKeyed(keys, delivery))
        return { purpose: 'bounce', delivery, via: 'message-id' };
    }
  }
  return null;
}

/**
 * Whether the ledger's Message-ID is one made under a key we hold. Mail sent before Message-IDs
 * were keyed carries the unkeyed hash of (newsletter, address), which anybody can compute for a
 * guessed address: such an id proves nothing, so its reports count only through a token.
 */
function isKeyed(keys: readonly string[], delivery: ReportDelivery): boolean {
  const domain = /@([^>]*)>$/.exec(delivery.messageId)?.[1];
  if (domain === undefined) return false;
  return keys.some(
    (key) =>
      key !== '' && messageIdFor(key, delivery.newsletterId, delivery.address, domain) === delivery.messageId,
  );
}

const BOTH: ReadonlySet<ReturnPathPurpose> = new Set(['bounce', 'unsubscribe']);
const BOUNCE_ONLY: ReadonlySet<ReturnPathPurpose> = new Set(['bounce']);

/** The recipients a report names, normalised as the ledger keys them. */
export function reportedAddresses(report: IncomingReport): Set<string> {
  const raw =
    report.kind === 'arf'
      ? (report.feedback?.originalRcptTo ?? [])
      : report.dsnRecipients.map((recipient) => recipient.address);
  const named = new Set<string>();
  for (const address of raw) {
    const parsed = normaliseAddress(address);
    if (parsed.ok) named.add(parsed.address);
  }
  return named;
}
