/**
 * A newsletter's hard bounces on SQLite: its `failed` rows whose address is on the suppression
 * list. A 5.1.x reply writes the failure and the suppression in one transaction (fence.ts), so
 * the pair is what "suppressed as designed" means: list hygiene that `show` and `status` report,
 * not an alarm (src/domain/failure-alarm.ts). Read in one snapshot, so the count and the
 * addresses agree.
 */
import type { HardBounces } from '../store.js';
import type { SqliteDb } from './db.js';

const FAILED_AND_SUPPRESSED = `FROM deliveries d
  WHERE d.newsletter_id = ? AND d.state = 'failed'
    AND EXISTS (SELECT 1 FROM suppressions s WHERE s.address = d.address)`;

export function hardBounces(c: SqliteDb, newsletterId: number, limit: number): HardBounces {
  return c.deferred(() => {
    const { n } = c.sql(`SELECT count(*) AS n ${FAILED_AND_SUPPRESSED}`).get(newsletterId) as { n: number };
    const addresses = (
      c.sql(`SELECT d.address ${FAILED_AND_SUPPRESSED} ORDER BY d.id LIMIT ?`).all(newsletterId, limit) as {
        address: string;
      }[]
    ).map((row) => row.address);
    return { count: n, addresses };
  });
}
