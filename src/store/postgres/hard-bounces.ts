/**
 * A newsletter's hard bounces on PostgreSQL: its `failed` rows whose address is on the
 * suppression list. A 5.1.x reply writes the failure and the suppression in one transaction
 * (fence.ts), so the pair is what "suppressed as designed" means: list hygiene that `show` and
 * `status` report, not an alarm (src/domain/failure-alarm.ts). One statement, so the count and
 * the addresses come from one snapshot: the window count is taken before LIMIT applies.
 */
import type { HardBounces } from '../store.js';
import type { PgDb } from './db.js';

export async function hardBounces(pg: PgDb, newsletterId: number, limit: number): Promise<HardBounces> {
  const rows = await pg.rows<{ address: string; total: string | number }>(
    `SELECT d.address, count(*) OVER () AS total
       FROM deliveries d
      WHERE d.newsletter_id = $1 AND d.state = 'failed'
        AND EXISTS (SELECT 1 FROM suppressions s WHERE s.address = d.address)
      ORDER BY d.id
      LIMIT $2`,
    [newsletterId, Math.max(1, limit)],
  );
  return { count: Number(rows[0]?.total ?? 0), addresses: rows.slice(0, limit).map((row) => row.address) };
}
