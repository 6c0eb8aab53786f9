/**
 * What the bounce mailbox needs of the store (issue 18): the ledger row a report names (by row id
 * from a VERP token, or by the Message-ID it returns), recording one authenticated report once
 * per (delivery, kind), and the per-newsletter counts `show` and `status` print. Part of
 * `CatalogStore` (store.ts); each dialect writes it in reports.ts (sqlite/reports.ts,
 * postgres/reports.ts), checked by the same contract suite (test/integration/store-contract-reports.ts).
 */
import type { Millis } from '../domain/types.js';

/** One ledger row, as a report is checked against it. */
export interface ReportDelivery {
  deliveryId: number;
  newsletterId: number;
  /** Null when the row was written without one (kept as a number: the subscriber may be gone). */
  subscriberId: number | null;
  /** Normalised, as the ledger keys it (`forgotten:<hash>` after `recipients forget`). */
  address: string;
  messageId: string;
}

/** An authenticated bounce or complaint about one delivery. */
export interface ReportEvent {
  delivery: ReportDelivery;
  /** The report's Message-ID (or `sha256:<hex>` of its bytes): shown by `suppress list`. */
  reportId: string;
  /** hard: 5.x.x and Action failed; soft: 4.x.x or Action delayed; complaint: an ARF report. */
  kind: 'hard' | 'soft' | 'complaint';
  /** RFC 3463 for a bounce (e.g. `5.1.1`); the Feedback-Type for a complaint (e.g. `abuse`). */
  status: string;
  /** What the suppression says, in words (src/domain/bounce.ts). */
  reason: string;
}

export interface ReportResult {
  /** False when this delivery already had a report of this kind: nothing changed. */
  recorded: boolean;
  /** The address was suppressed by this report (false if it already was, or is not yet). */
  suppressed: boolean;
  /** Soft bounces of the address that count (one per delivery), this one included; 0 otherwise. */
  softCount: number;
}

/** A newsletter's authenticated reports, counted per delivery. */
export interface ReportCounts {
  /** Deliveries with a hard or a soft bounce. */
  bounced: number;
  hard: number;
  soft: number;
  complained: number;
}

export interface ReportStore {
  /** The ledger row with this id, or null (pruned, never there). */
  deliveryById(deliveryId: number): Promise<ReportDelivery | null>;
  /**
   * The ledger row of this newsletter to this address (its UNIQUE key), or null. How a report
   * without a token finds the delivery its Message-ID names (src/bounces/authenticate.ts): the
   * ledger keeps no index on Message-IDs, which every claim would pay for.
   */
  deliveryTo(newsletterId: number, address: string): Promise<ReportDelivery | null>;
  /**
   * Records one authenticated report, once per (delivery, kind): a hard bounce or a complaint
   * suppresses the address (source `bounce` or `complaint`, with the report's Message-ID); soft
   * bounces do once `softLimit` deliveries to the address bounced softly. One transaction.
   */
  recordReport(event: ReportEvent, options: { softLimit: number; now: Millis }): Promise<ReportResult>;
  /** The counts of each newsletter asked for; one with no reports is all zeros. */
  reportCounts(newsletterIds: readonly number[]): Promise<Map<number, ReportCounts>>;
}

export const NO_REPORTS: ReportCounts = Object.freeze({ bounced: 0, hard: 0, soft: 0, complained: 0 });

/** The suppression's source for an authenticated report. */
export function reportSource(kind: ReportEvent['kind']): 'bounce' | 'complaint' {
  return kind === 'complaint' ? 'complaint' : 'bounce';
}

/** SQL shared by both dialects (placeholders differ: each file passes its own). */
export const REPORT_COUNTS_COLUMNS = `newsletter_id,
  count(DISTINCT CASE WHEN kind IN ('hard', 'soft') THEN delivery_id END) AS bounced,
  count(CASE WHEN kind = 'hard' THEN 1 END) AS hard,
  count(CASE WHEN kind = 'soft' THEN 1 END) AS soft,
  count(CASE WHEN kind = 'complaint' THEN 1 END) AS complained`;

export interface ReportCountsRow {
  newsletter_id: number;
  bounced: number;
  hard: number;
  soft: number;
  complained: number;
}

export interface ReportDeliveryRow {
  id: number;
  newsletter_id: number;
  subscriber_id: number | null;
  address: string;
  message_id: string;
}

export function toReportDelivery(row: ReportDeliveryRow): ReportDelivery {
  return {
    deliveryId: row.id,
    newsletterId: row.newsletter_id,
    subscriberId: row.subscriber_id,
    address: row.address,
    messageId: row.message_id,
  };
}

export function countsByNewsletter(
  newsletterIds: readonly number[],
  rows: readonly ReportCountsRow[],
): Map<number, ReportCounts> {
  const counts = new Map<number, ReportCounts>(newsletterIds.map((id) => [id, NO_REPORTS]));
  for (const row of rows)
    counts.set(Number(row.newsletter_id), {
      bounced: Number(row.bounced),
      hard: Number(row.hard),
      soft: Number(row.soft),
      complained: Number(row.complained),
    });
  return counts;
}

export const DELIVERY_COLUMNS = 'id, newsletter_id, subscriber_id, address, message_id';

/** A bounce_events row of a report: its columns, and `bounceEventValues` gives their values in order. */
export const BOUNCE_EVENT_COLUMNS = 'dsn_id, address, kind, status, reason, at, delivery_id, newsletter_id';

export function bounceEventValues(event: ReportEvent, now: Millis): unknown[] {
  const { delivery } = event;
  return [
    event.reportId,
    delivery.address,
    event.kind,
    event.status,
    event.reason,
    now,
    delivery.deliveryId,
    delivery.newsletterId,
  ];
}

/** A report already on file (its event for that delivery and kind exists): nothing more happens. */
export const ALREADY_RECORDED: ReportResult = Object.freeze({
  recorded: false,
  suppressed: false,
  softCount: 0,
});
