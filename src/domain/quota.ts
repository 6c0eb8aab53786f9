/**
 * The sending account's hourly quota (NEWSLETTER_HOURLY_LIMIT): pure arithmetic. The count itself
 * lives in the database (table quota_usage), so that every run on every host shares it; the
 * engine reserves from it before each claim (src/engine/quota.ts).
 *
 * Glossary:
 * - account: whose quota it is. Providers count per login, so the default is the SMTP
 *   `user@host`; NEWSLETTER_QUOTA_ACCOUNT names it when several transports share one login.
 * - window: one clock hour in UTC, [start, start + 1 h). A clock hour rather than a sliding one:
 *   one row per hour, a reservation is one row update, and an operator can say "the quota opens
 *   at 14:00". (In the few zones whose offset is not whole hours, the hour starts at :30 or :45
 *   local time.)
 * - used: messages reserved in the window by all runs, minus what they gave back unused.
 */
import type { Millis } from './types.js';
import { describeTransport, type TransportSpec } from './transport-spec.js';

export const QUOTA_WINDOW_MS = 3_600_000;

export interface QuotaWindow {
  start: Millis;
  /** Exclusive: the next window's start. */
  end: Millis;
}

/** The clock hour (UTC) that `now` falls in. */
export function quotaWindow(now: Millis): QuotaWindow {
  const start = Math.floor(now / QUOTA_WINDOW_MS) * QUOTA_WINDOW_MS;
  return { start, end: start + QUOTA_WINDOW_MS };
}

/**
 * How many of `wanted` messages may be reserved when `used` of `limit` are taken: never more than
 * what is left, never less than 0 (a limit lowered below what an hour already used grants none).
 */
export function quotaGrant(used: number, wanted: number, limit: number): number {
  return Math.max(0, Math.min(Math.floor(wanted), Math.floor(limit) - used));
}

/**
 * The account a transport sends as: the SMTP `user@host` (the login a provider counts), else the
 * transport's description, which never holds a password.
 */
export function defaultQuotaAccount(spec: TransportSpec): string {
  if (spec.kind === 'smtp' && spec.user) return `${spec.user}@${spec.host}`;
  return describeTransport(spec);
}
