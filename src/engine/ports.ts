/**
 * The interfaces the send engine needs. The engine owns them; implementations live in
 * src/store, src/transport and src/render and are loaded only when something is due.
 */
import type { ClaimedDelivery, Newsletter, SendOutcome, VerifiedBody } from '../domain/types.js';

/** One fully personalised message, ready for a transport. */
export interface OutgoingMessage {
  /** With angle brackets: `<n12.3f9a…@example.org>`. Deterministic per (newsletter, recipient). */
  messageId: string;
  /** A full From header value, e.g. `"Example News" <news@example.org>`. */
  from: string;
  /** The envelope and header recipient: a single mailbox. */
  to: string;
  /** NEWSLETTER_REPLY_TO, when set. */
  replyTo?: string | undefined;
  subject: string;
  html: string;
  text: string;
  /** Extra headers: List-Unsubscribe, List-Unsubscribe-Post, List-Id, … */
  headers: Record<string, string>;
}

export interface Transport {
  /** `smtp`, `sendmail`, `file` or `count`. */
  readonly kind: string;
  /**
   * Hands one message over and classifies what happened (DESIGN's SMTP outcome table).
   * Never throws for a per-message or per-connection problem: that is an outcome.
   * Never resends on its own.
   */
  send(message: OutgoingMessage): Promise<SendOutcome>;
  /** Checks connectivity and authentication without sending (doctor, and before a run). */
  verify(): Promise<void>;
  close(): Promise<void>;
}

export interface BuildContext {
  /** Absolute path of the templates folder; includes may not leave it. */
  templatesRoot: string;
  /** Fields every recipient has: email, name, unsubscribe_url, and every imported CSV column. */
  knownFields: readonly string[];
  /** NEWSLETTER_FROM, used when the newsletter has none. */
  defaultFrom: string | null;
}

/** Compiles MJML once and verifies the result; throws BuildError with every problem found. */
export type BuildBody = (newsletter: Newsletter, context: BuildContext) => Promise<VerifiedBody>;

export interface PersonaliseContext {
  newsletterId: number;
  /** NEWSLETTER_BASE_URL; unsubscribe links are `${baseUrl}/u/${token}`. */
  baseUrl: string;
  /** NEWSLETTER_SECRET, the key of unsubscribe tokens. Never printed. */
  secret: string;
  /** Used for List-Id and the mailto unsubscribe address. */
  listNames: readonly string[];
  /** NEWSLETTER_REPLY_TO: a Reply-To on every message. */
  replyTo?: string | null | undefined;
}

/** Prepared once per newsletter (templates pre-split), then called per recipient in microseconds. */
export type Personaliser = (recipient: ClaimedDelivery) => OutgoingMessage;
export type PreparePersonaliser = (body: VerifiedBody, context: PersonaliseContext) => Personaliser;
