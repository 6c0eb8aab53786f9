/**
 * What a run needs to know from the configuration, and nothing more. The engine owns this type;
 * the CLI builds it from `Config` (src/cli/engine-options.ts). Keeping it narrow keeps secrets the
 * engine has no use for (the DKIM key, the SMTP password: the transport is built outside) out of
 * its reach, and says in one place what a run depends on.
 */
import type { ReturnPathSetting } from '../domain/return-path.js';
import type { Millis } from '../domain/types.js';

/** NEWSLETTER_HOURLY_LIMIT: the sending account's quota, shared by every run on every host. */
export interface HourlyQuota {
  /** Whose quota it is: NEWSLETTER_QUOTA_ACCOUNT, or the SMTP user@host (never a password). */
  account: string;
  /** Messages per clock hour, for all runs on all hosts together. */
  hourlyLimit: number;
}

/** What every message of a newsletter is built with (a real run and a dry run alike). */
export interface MessageOptions {
  /** NEWSLETTER_FROM, used when a newsletter has no From of its own. */
  from: string | null;
  /** NEWSLETTER_BASE_URL: unsubscribe links are `${baseUrl}/u/${token}`. */
  baseUrl: string | null;
  /** NEWSLETTER_SECRET, the key of unsubscribe tokens. Never printed. */
  secret: string | null;
  /** NEWSLETTER_REPLY_TO: a Reply-To on every message. */
  replyTo: string | null;
  /** NEWSLETTER_RETURN_PATH(_DELIMITER): the VERP envelope sender; absent: the plain From. */
  returnPath?: ReturnPathSetting | undefined;
}

export interface SendDueOptions extends MessageOptions {
  /** NEWSLETTER_RATE: messages per second, for the whole run. */
  rate: number;
  /**
   * NEWSLETTER_BATCH: recipients per claim, half the most that can end `unknown` after a crash;
   * null (unset): sized by the rate reached (batch-size.ts).
   */
  batchSize: number | null;
  /** SMTP connections: messages in flight when the transport does not say how many it takes. */
  connections: number;
  /** NEWSLETTER_LEASE: how long the run's claims last without renewal. */
  leaseMs: Millis;
  /** NEWSLETTER_RETRY_AFTER: delays between attempts after a 4xx; after the last, `failed`. */
  retryAfter: readonly Millis[];
  /** Null: no hourly quota. */
  quota: HourlyQuota | null;
}
