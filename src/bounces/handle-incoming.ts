/**
 * One incoming message of the bounce mailbox, whatever brought it (`bounces receive` on stdin,
 * `bounces import` from an mbox or Maildir, `bounces fetch` over IMAP): read it, decide whether
 * it authenticates, act on at most the one delivery it authenticates for, and say what it did.
 *
 * FINAL SIGNATURE (kept stable for `bounces receive`, `import` and `fetch`):
 *
 *   export async function handleIncoming(
 *     store: Store,
 *     raw: Buffer,
 *     context: IncomingContext,
 *   ): Promise<IncomingResult>
 *
 *   interface IncomingContext {
 *     keys: readonly string[];      // HMAC keys, current first: unsubscribeKeys(config, now) (config.ts)
 *     softBounceLimit: number;      // config.softBounceLimit
 *     now: Millis;                  // Date.now()
 *     envelopeRecipient?: string;   // the MTA's recipient (ORIGINAL_RECIPIENT, $RECIPIENT, argv)
 *     source: string;               // for messages: `bounces.mbox#3`, `imap uid 42`, `stdin`
 *   }
 *
 *   interface IncomingResult {
 *     kind: 'bounce' | 'complaint' | 'unsubscribe' | 'unmatched' | 'not-a-report' | 'already-counted';
 *     addresses: string[];          // acted on: at most one
 *     details: IncomingDetail[];    // the delivery it authenticated for (at most one), what became of it
 *     problems: string[];           // for the operator, each prefixed with `source: `
 *     reason?: string;              // unmatched / not-a-report: why, in words (escape before printing)
 *   }
 *   interface IncomingDetail { address, outcome, suppressed, deliveryId, newsletterId }
 *
 * Idempotent: the same message handled twice changes nothing the second time (`already-counted`):
 * counted once per (delivery, kind); an unsubscribe already done is no change.
 *
 * It throws only when the store fails (busy, unreachable, a bug): the caller must then keep the
 * message (receive exits 75, fetch leaves it in the folder), because nothing was decided. A
 * message that cannot be parsed is `not-a-report` with a problem, never a throw.
 *
 * Results go into a summary (src/bounces/summary.ts) that every way in prints the same way.
 */
import { classifyBounce, shortenReason } from '../domain/bounce.js';
import { printable } from '../domain/printable.js';
import type { Millis } from '../domain/types.js';
import type { DsnRecipient } from '../import/dsn-fields.js';
import type { Store } from '../store/store.js';
import { type Authenticated, authenticate } from './authenticate.js';
import { type IncomingReport, readReport } from './report.js';

export interface IncomingContext {
  /** HMAC keys, the current NEWSLETTER_SECRET first, then the previous one while accepted. */
  keys: readonly string[];
  softBounceLimit: number;
  now: Millis;
  /** The recipient the MTA delivered this message to (the VERP address), when it says so. */
  envelopeRecipient?: string | undefined;
  /** Where the message came from, for problems: `bounces.mbox#3`, `imap uid 42`, `stdin`. */
  source: string;
}

export type IncomingKind =
  | 'bounce'
  | 'complaint'
  | 'unsubscribe'
  | 'unmatched'
  | 'not-a-report'
  | 'already-counted';

export interface IncomingDetail {
  /** The delivery's address (from our ledger, never from the report). */
  address: string;
  /** What this message did to it. */
  outcome: 'hard' | 'soft' | 'complaint' | 'unsubscribe' | 'not-a-bounce' | 'already-counted';
  /** The address was suppressed (bounce, complaint) or unsubscribed by this message. */
  suppressed: boolean;
  /** The ledger row the message authenticated for. */
  deliveryId: number;
  newsletterId: number;
}

export interface IncomingResult {
  kind: IncomingKind;
  /** The addresses acted on: at most one (the delivery the report authenticates for). */
  addresses: string[];
  details: IncomingDetail[];
  problems: string[];
  /** For `unmatched` (and `not-a-report`): why, in words; may quote the report: escape before printing. */
  reason?: string | undefined;
}

/** Feedback types that are a recipient's complaint (RFC 5965, RFC 6650); not-spam and auth-failure are not. */
const COMPLAINTS = new Set(['abuse', 'fraud', 'virus', 'other']);

export async function handleIncoming(
  store: Store,
  raw: Buffer,
  context: IncomingContext,
): Promise<IncomingResult> {
  let report: IncomingReport;
  try {
    report = readReport(raw);
  } catch (error) {
    // readReport is written not to throw; if it does, the message is kept out of the counts.
    return {
      kind: 'not-a-report',
      addresses: [],
      details: [],
      problems: [`${context.source}: cannot be read (${printable((error as Error).message)})`],
    };
  }
  const envelope = context.envelopeRecipient ? [context.envelopeRecipient] : [];
  const found = await authenticate(store, report, context.keys, envelope);

  if (found?.purpose === 'unsubscribe') return unsubscribe(store, found, context);
  if (report.kind === 'other') {
    return { kind: 'not-a-report', addresses: [], details: [], problems: [], reason: 'not a report' };
  }
  if (!found) {
    return {
      kind: 'unmatched',
      addresses: [],
      details: [],
      // Without the secret nothing can authenticate: said, or every report would vanish silently.
      problems:
        context.keys.length === 0
          ? [
              `${context.source}: NEWSLETTER_SECRET is not set, so no report can be checked; set it as send-due has it`,
            ]
          : [],
      reason: `${context.source}: ${report.kind === 'arf' ? 'a complaint' : 'a bounce'} (${report.id}) that names no delivery of ours: no valid token, and no Message-ID of ours with that recipient; nothing changed`,
    };
  }
  return report.kind === 'arf'
    ? complaint(store, report, found, context)
    : bounce(store, report, found, context);
}

async function bounce(
  store: Store,
  report: IncomingReport,
  found: Authenticated,
  context: IncomingContext,
): Promise<IncomingResult> {
  const { delivery } = found;
  const chosen = recipientFor(report.dsnRecipients, delivery.address);
  const kind = chosen ? classifyBounce(chosen.action, chosen.status) : null;
  if (!chosen || kind === null) {
    // delivered, relayed, expanded, or failed without a status code: nothing to count.
    return {
      kind: 'not-a-report',
      addresses: [],
      details: [detail(found, 'not-a-bounce', false)],
      problems:
        chosen?.action === 'failed'
          ? [`${context.source}: ${delivery.address} failed without a status code; skipped`]
          : [],
      reason: 'a delivery status notification that reports no bounce',
    };
  }
  const result = await store.recordReport(
    {
      delivery,
      reportId: report.id,
      kind,
      status: chosen.status,
      reason: printable(shortenReason(chosen.diagnostic || `Action: ${chosen.action}`)),
    },
    { softLimit: context.softBounceLimit, now: context.now },
  );
  if (!result.recorded) return alreadyCounted(found);
  return {
    kind: 'bounce',
    addresses: [delivery.address],
    details: [detail(found, kind, result.suppressed)],
    problems: [],
  };
}

async function complaint(
  store: Store,
  report: IncomingReport,
  found: Authenticated,
  context: IncomingContext,
): Promise<IncomingResult> {
  const type = report.feedback?.type ?? '';
  if (!COMPLAINTS.has(type)) {
    return {
      kind: 'not-a-report',
      addresses: [],
      details: [],
      problems: [],
      reason: `a feedback report of type "${type}", not a complaint`,
    };
  }
  const agent = report.feedback?.userAgent;
  const result = await store.recordReport(
    {
      delivery: found.delivery,
      reportId: report.id,
      kind: 'complaint',
      status: type,
      reason: printable(shortenReason(`complaint (${type})${agent ? ` reported by ${agent}` : ''}`)),
    },
    { softLimit: context.softBounceLimit, now: context.now },
  );
  if (!result.recorded) return alreadyCounted(found);
  return {
    kind: 'complaint',
    addresses: [found.delivery.address],
    details: [detail(found, 'complaint', result.suppressed)],
    problems: [],
  };
}

/**
 * Mail to a delivery's List-Unsubscribe mailto: that subscriber leaves the lists of that
 * newsletter (the store's one opt-out, source `mailto`), whatever the mail says.
 */
async function unsubscribe(
  store: Store,
  found: Authenticated,
  context: IncomingContext,
): Promise<IncomingResult> {
  const { delivery } = found;
  const who =
    delivery.subscriberId !== null ? { subscriberId: delivery.subscriberId } : { address: delivery.address };
  const result = await store.optOut(
    who,
    { kind: 'newsletter', newsletterId: delivery.newsletterId },
    'mailto',
    context.now,
  );
  if (result === null) {
    return {
      kind: 'already-counted',
      addresses: [],
      details: [detail(found, 'already-counted', false)],
      problems: [
        `${context.source}: unsubscribe for ${delivery.address}, who is no longer a subscriber; nothing to do`,
      ],
    };
  }
  if (!result.changed) return alreadyCounted(found);
  return {
    kind: 'unsubscribe',
    addresses: [result.address],
    details: [detail(found, 'unsubscribe', true)],
    problems: [],
  };
}

/**
 * The recipient block about `address`; when the report was addressed to the delivery's token but
 * names the recipient otherwise (a forwarding alias, a rewritten address), its first block that
 * reports a bounce. The action is always on the delivery's own address, never the report's.
 */
function recipientFor(recipients: readonly DsnRecipient[], address: string): DsnRecipient | null {
  const exact = recipients.find((recipient) => recipient.address.trim().toLowerCase() === address);
  if (exact) return exact;
  return (
    recipients.find((recipient) => classifyBounce(recipient.action, recipient.status) !== null) ??
    recipients[0] ??
    null
  );
}

function alreadyCounted(found: Authenticated): IncomingResult {
  return {
    kind: 'already-counted',
    addresses: [],
    details: [detail(found, 'already-counted', false)],
    problems: [],
  };
}

function detail(
  found: Authenticated,
  outcome: IncomingDetail['outcome'],
  suppressed: boolean,
): IncomingDetail {
  return {
    address: found.delivery.address,
    outcome,
    suppressed,
    deliveryId: found.delivery.deliveryId,
    newsletterId: found.delivery.newsletterId,
  };
}
