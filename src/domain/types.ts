/**
 * Glossary
 *
 * - Subscriber: one mailbox, unique on its normalised address (trimmed, lower-cased). Carries
 *   `name` and any other CSV columns as `fields`.
 * - List: a named group of subscribers. A newsletter goes to the union of its lists (its audience),
 *   narrowed by its segment if it has one (segment.ts: `--where`, `--exclude-list`).
 * - Newsletter: subject + MJML template + lists + send time. Moves draft → scheduled → sending → sent,
 *   or to failed (build failed) / cancelled.
 * - Verified body: the compiled, checked HTML and text (still holding `{{field}}` placeholders),
 *   stored in the same transaction that moves a newsletter to `sending`.
 * - Delivery: one ledger row per (newsletter, normalised address). Inserting it is the claim; the
 *   unique key makes a second claim impossible. States: claimed, sent, failed, retry, unknown, skipped.
 * - Run: one `send-due` process, registered with its host and pid, holding a renewable lease.
 *   Every outcome write is fenced by the run id that claimed the row.
 * - Unknown: the message may have been handed to the server but its fate was not recorded. Never
 *   resent on its own; an operator settles it with `reconcile`.
 */

import type { Segment } from './segment.js';
import type { StoredTemplate } from './stored-template.js';

export const NEWSLETTER_STATUSES = ['draft', 'scheduled', 'sending', 'sent', 'failed', 'cancelled'] as const;
export type NewsletterStatus = (typeof NEWSLETTER_STATUSES)[number];

export const DELIVERY_STATES = ['claimed', 'sent', 'failed', 'retry', 'unknown', 'skipped'] as const;
export type DeliveryState = (typeof DELIVERY_STATES)[number];

/** Epoch milliseconds. Every time in the store is one of these; ISO strings only at the edges. */
export type Millis = number;

export interface Subscriber {
  id: number;
  email: string;
  address: string;
  name: string;
  fields: Record<string, string>;
  status: 'active' | 'unsubscribed';
  lists: string[];
  /** The lists this person left (a per-list unsubscribe): never mailed through them again. */
  leftLists: string[];
  createdAt: Millis;
}

/** What the engine stores once the body is built and verified; placeholders are still in it. */
export interface VerifiedBody {
  subject: string;
  html: string;
  text: string;
  from: string;
  /** Every `{{field}}` name used in subject, HTML or text. */
  fields: string[];
  /** sha256 of the template source and its includes, to show what was compiled. */
  templateHash: string;
  compiledAt: Millis;
}

export interface Newsletter {
  id: number;
  subject: string;
  templatePath: string;
  from: string | null;
  lists: string[];
  status: NewsletterStatus;
  scheduledAt: Millis | null;
  failureReason: string | null;
  body: VerifiedBody | null;
  createdAt: Millis;
  startedAt: Millis | null;
  finishedAt: Millis | null;
  startedByRun: number | null;
  /** When `prune` deleted its ledger rows (its counts were kept); null while they are there. */
  prunedAt: Millis | null;
  /** Changes with every change of the row: what a build read is compared with it before sending. */
  updatedAt: Millis;
  /**
   * The template and its includes as `create` or `edit` read them: what every build compiles.
   * Null for a newsletter created before templates were stored: built from `templatePath`.
   */
  template: StoredTemplate | null;
  /** The zone its send time was typed in (IANA name or offset), for display; null: TZ. */
  scheduledZone: string | null;
  /** The part of its lists it goes to (src/domain/segment.ts); null: the whole lists. */
  segment: Segment | null;
}

export interface DeliveryCounts {
  audience: number;
  pending: number;
  claimed: number;
  sent: number;
  failed: number;
  retry: number;
  unknown: number;
  skipped: number;
}

/** A ledger row this run claimed and must now send. */
export interface ClaimedDelivery {
  deliveryId: number;
  newsletterId: number;
  subscriberId: number | null;
  email: string;
  address: string;
  name: string;
  fields: Record<string, string>;
  messageId: string;
  attempts: number;
}

/** A recipient a dry run would send to: nothing is claimed. */
export type PendingRecipient = Omit<ClaimedDelivery, 'deliveryId' | 'messageId' | 'attempts'> & {
  skipReason: string | null;
};

export interface Delivery {
  id: number;
  newsletterId: number;
  address: string;
  state: DeliveryState;
  runId: number | null;
  attempts: number;
  nextAttemptAt: Millis | null;
  messageId: string;
  smtpReply: string | null;
  queueId: string | null;
  reason: string | null;
  updatedAt: Millis;
}

export interface RunInfo {
  id: number;
  hostId: string;
  hostname: string;
  pid: number;
  /** Where `pid` means something (boot id and pid namespace: src/host/pid-scope.ts); null if unknown. */
  pidScope: string | null;
  startedAt: Millis;
  leaseUntil: Millis;
  endedAt: Millis | null;
  outcome: string | null;
  counts: RunCounts;
  error: string | null;
}

export interface RunCounts {
  sent: number;
  failed: number;
  retry: number;
  unknown: number;
  skipped: number;
}

/** One recipient's outcome, as the transport classified it (see src/domain/outcome.ts). */
export type SendOutcome =
  | { kind: 'sent'; reply: string; queueId: string | null }
  | { kind: 'retry'; reply: string; throttled: boolean; unreachable: boolean }
  | { kind: 'failed'; reply: string; suppress: boolean }
  | { kind: 'unknown'; reply: string }
  /** Authentication or configuration: the run must stop; the row goes back to `retry` unpunished. */
  | { kind: 'fatal'; reply: string }
  /**
   * Given back untried: the message was still waiting for a connection when another message's
   * reply meant the run must stop (throttled, unreachable, fatal). Nothing of it was sent; the
   * row goes back to `retry` unpunished, like the rest of the batch.
   */
  | { kind: 'withdrawn'; reply: string };
