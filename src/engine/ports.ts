/**
 * The interfaces the send engine needs. The engine owns them; implementations live in
 * src/store, src/transport and src/render and are loaded only when something is due.
 */
import type { OutgoingMessage } from '../domain/message.js';
import type { ClaimedDelivery, Newsletter, SendOutcome, VerifiedBody } from '../domain/types.js';
import type { ReturnPathSetting } from '../domain/return-path.js';
import type { SmtpTlsPolicy } from '../domain/smtp-tls-policy.js';
import type { PeerTls } from '../transport/smtp-tls.js';

/** Defined in the domain, where render (which builds it) and transport (which sends it) meet. */
export type { OutgoingMessage } from '../domain/message.js';

export interface SendOptions {
  /**
   * Aborted when the run stops on another message's reply (throttled, unreachable, fatal): a
   * message that is still waiting for a connection then comes back `withdrawn`, untried. One
   * already on the wire runs its course.
   */
  signal?: AbortSignal | undefined;
}

/** What `verify()` saw of an SMTP connection: doctor reports it. */
export interface TransportVerification {
  /** Null: the connection was not encrypted. */
  tls: PeerTls | null;
  authenticated: boolean;
  tlsPolicy: SmtpTlsPolicy;
}

export interface Transport {
  /** `smtp`, `sendmail`, `file` or `count`. */
  readonly kind: string;
  /**
   * How many `send()` calls it can usefully work on at once (the SMTP pool pipelines: three per
   * connection). The engine keeps at most this many in flight; without it, the configured
   * number of connections.
   */
  readonly maxInFlight?: number;
  /**
   * Hands one message over and classifies what happened (DESIGN's SMTP outcome table).
   * Never throws for a per-message or per-connection problem: that is an outcome.
   * Never resends a message the server may have received.
   */
  send(message: OutgoingMessage, options?: SendOptions): Promise<SendOutcome>;
  /** Checks connectivity and authentication without sending (doctor, and before a run). */
  verify(): Promise<void>;
  /** SMTP only: `verify()`, and what it saw of the connection's encryption (doctor reports it). */
  inspect?(): Promise<TransportVerification>;
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
  /**
   * NEWSLETTER_RETURN_PATH(_DELIMITER): each message's envelope sender carries its delivery's
   * VERP token, and an explicit return path is offered as the List-Unsubscribe mailto
   * (src/domain/return-path.ts). Absent: the plain From address and no mailto.
   */
  returnPath?: ReturnPathSetting | undefined;
  /**
   * Test sends and previews: every link carries the inert test token (src/render/unsubscribe-token.ts),
   * never the live token of the subscriber the copy is personalised as.
   */
  testToken?: boolean | undefined;
}

/** Prepared once per newsletter (templates pre-split), then called per recipient in microseconds. */
export type Personaliser = (recipient: ClaimedDelivery) => OutgoingMessage;
export type PreparePersonaliser = (body: VerifiedBody, context: PersonaliseContext) => Personaliser;
