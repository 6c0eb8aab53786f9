/**
 * Authenticated reports on PostgreSQL (src/store/report-store.ts): the ledger rows they name, one
 * event per (delivery, kind) from any number of hosts at once, and the counts per newsletter.
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
import { lockAddressBounces, suppressAfterEvent } from './bounces.js';
import type { PgDb } from './db.js';

export async function deliveryById(pg: PgDb, deliveryId: number): Promise<ReportDelivery | null> {
  const [row] = await pg.rows<ReportDeliveryRow>(`SELECT ${DELIVERY_COLUMNS} FROM deliveries WHERE id = $1`, [
    deliveryId,
  ]);
  return row ? toReportDelivery(row) : null;
}

export async function deliveryTo(
  pg: PgDb,
  newsletterId: number,
  address: string,
): Promise<ReportDelivery | null> {
  const [row] = await pg.rows<ReportDeliveryRow>(
    `SELECT ${DELIVERY_COLUMNS} FROM deliveries WHERE newsletter_id = $1 AND address = $2`,
    [newsletterId, address],
  );
  return row ? toReportDelivery(row) : null;
}

export function recordReport(
  pg: PgDb,
  event: ReportEvent,
  options: { softLimit: number; now: Millis },
): Promise<ReportResult> {
  const { delivery } = event;
  return pg.tx(async (sql): Promise<ReportResult> => {
    await lockAddressBounces(sql, delivery.address);
    const inserted = await sql.query(
      `INSERT INTO bounce_events (${BOUNCE_EVENT_COLUMNS})
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
      bounceEventValues(event, options.now),
    );
    if (inserted.rowCount === 0) return ALREADY_RECORDED;
    return suppressAfterEvent(sql, { ...event, address: delivery.address }, event.reportId, options);
  });
}

export async function reportCounts(
  pg: PgDb,
  newsletterIds: readonly number[],
): Promise<Map<number, ReportCounts>> {
  if (newsletterIds.length === 0) return new Map();
  const rows = await pg.rows<ReportCountsRow>(
    `SELECT ${REPORT_COUNTS_COLUMNS} FROM bounce_events
      WHERE newsletter_id = ANY($1::bigint[]) GROUP BY newsletter_id`,
    [newsletterIds],
  );
  return countsByNewsletter(newsletterIds, rows);
}
