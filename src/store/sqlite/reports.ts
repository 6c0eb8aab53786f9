/**
 * Authenticated reports on SQLite (src/store/report-store.ts): the ledger rows they name, one
 * event per (delivery, kind), and the counts per newsletter.
 */
import type { Millis } from '../../domain/types.js';
import {
  ALREADY_RECORDED,
  BOUNCE_EVENT_COLUMNS,
  bounceEventValues,
  countsByNewsletter,
  DELIVERY_COLUMNS,
  REPORT_COUNTS_COLUMNS,
  type ReportCounts,
  type ReportCountsRow,
  type ReportDelivery,
  type ReportDeliveryRow,
  type ReportEvent,
  type ReportResult,
  toReportDelivery,
} from '../report-store.js';
import { suppressAfterEvent } from './bounces.js';
import type { SqliteDb } from './db.js';

export function deliveryById(c: SqliteDb, deliveryId: number): ReportDelivery | null {
  const row = c.sql(`SELECT ${DELIVERY_COLUMNS} FROM deliveries WHERE id = ?`).get(deliveryId) as
    | ReportDeliveryRow
    | undefined;
  return row ? toReportDelivery(row) : null;
}

export function deliveryTo(c: SqliteDb, newsletterId: number, address: string): ReportDelivery | null {
  const row = c
    .sql(`SELECT ${DELIVERY_COLUMNS} FROM deliveries WHERE newsletter_id = ? AND address = ?`)
    .get(newsletterId, address) as ReportDeliveryRow | undefined;
  return row ? toReportDelivery(row) : null;
}

export function recordReport(
  c: SqliteDb,
  event: ReportEvent,
  options: { softLimit: number; now: Millis },
): ReportResult {
  const { delivery } = event;
  return c.immediate((): ReportResult => {
    const inserted = c
      .sql(
        `INSERT OR IGNORE INTO bounce_events (${BOUNCE_EVENT_COLUMNS})
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(...bounceEventValues(event, options.now)).changes;
    if (inserted === 0) return ALREADY_RECORDED;
    return suppressAfterEvent(c, { ...event, address: delivery.address }, event.reportId, options);
  });
}

export function reportCounts(c: SqliteDb, newsletterIds: readonly number[]): Map<number, ReportCounts> {
  if (newsletterIds.length === 0) return new Map();
  const rows = c
    .sql(
      `SELECT ${REPORT_COUNTS_COLUMNS} FROM bounce_events
        WHERE newsletter_id IN (SELECT value FROM json_each(?)) GROUP BY newsletter_id`,
    )
    .all(JSON.stringify(newsletterIds)) as ReportCountsRow[];
  return countsByNewsletter(newsletterIds, rows);
}
