/**
 * Authenticated reports on PostgreSQL (src/store/report-store.ts): the ledger rows they name, one
 * event per (delivery, kind) from any number of hosts at once, and the counts per newsletter.
 */
import { bounceSuppressionReason, bounceSuppresses } from '../../domain/bounce.js';
import type { Millis } from '../../domain/types.js';
import {
  countsByNewsletter,
  DELIVERY_COLUMNS,
  REPORT_COUNTS_COLUMNS,
  type ReportCounts,
  type ReportCountsRow,
  type ReportDelivery,
  type ReportDeliveryRow,
  type ReportEvent,
  type ReportResult,
  reportSource,
  toReportDelivery,
} from '../report-store.js';
import type { PgDb } from './db.js';

export async function deliveryById(pg: PgDb, deliveryId: number): Promise<ReportDelivery | null> {
  const [row] = await pg.rows<ReportDeliveryRow>(`SELECT ${DELIVERY_COLUMNS} FROM deliveries WHERE id = $1`, [
    deliveryId,
  ]);
  return row ? toReportDelivery(row) : null;
}

export async function deliveriesByMessageId(pg: PgDb, messageId: string): Promise<ReportDelivery[]> {
  const rows = await pg.rows<ReportDeliveryRow>(
    `SELECT ${DELIVERY_COLUMNS} FROM deliveries WHERE message_id = $1 ORDER BY id LIMIT 10`,
    [messageId],
  );
  return rows.map(toReportDelivery);
}

export function recordReport(
  pg: PgDb,
  event: ReportEvent,
  options: { softLimit: number; now: Millis },
): Promise<ReportResult> {
  const { now, softLimit } = options;
  const { delivery } = event;
  return pg.tx(async (sql): Promise<ReportResult> => {
    // As recordBounce: one address's soft bounces are counted in turn, or two hosts importing at
    // once would each count only their own uncommitted row and neither reach the limit.
    await sql.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`bounce:${delivery.address}`]);
    const inserted = await sql.query(
      `INSERT INTO bounce_events (dsn_id, address, kind, status, reason, at, delivery_id, newsletter_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
      [
        event.reportId,
        delivery.address,
        event.kind,
        event.status,
        event.reason,
        now,
        delivery.deliveryId,
        delivery.newsletterId,
      ],
    );
    if (inserted.rowCount === 0) return { recorded: false, suppressed: false, softCount: 0 };
    let softCount = 0;
    if (event.kind === 'soft') {
      const [row] = (
        await sql.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM bounce_events WHERE address = $1 AND kind = 'soft' AND cleared_at IS NULL",
          [delivery.address],
        )
      ).rows;
      softCount = row?.n ?? 0;
    }
    if (event.kind !== 'complaint' && !bounceSuppresses(event.kind, softCount, softLimit))
      return { recorded: true, suppressed: false, softCount };
    const reason =
      event.kind === 'complaint'
        ? event.reason
        : bounceSuppressionReason(
            { kind: event.kind, status: event.status, reason: event.reason },
            softCount,
          );
    const suppressed = await sql.query(
      `INSERT INTO suppressions (address, reason, source, created_at, report_id) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (address) DO NOTHING`,
      [delivery.address, reason, reportSource(event.kind), now, event.reportId],
    );
    return { recorded: true, suppressed: suppressed.rowCount === 1, softCount };
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
