/**
 * The sending account's hourly quota on PostgreSQL (src/domain/quota.ts decides the grant): one
 * row per (account, hour) that every host reserves from under its row lock; together they never
 * exceed the limit.
 */
import { quotaGrant } from '../../domain/quota.js';
import type { Millis } from '../../domain/types.js';
import type { PgDb } from './db.js';

export function reserveQuota(
  pg: PgDb,
  account: string,
  windowStart: Millis,
  wanted: number,
  limit: number,
  now: Millis,
): Promise<number> {
  // Runs on every host reserve from the same row, so the read and the add must not interleave.
  // The upsert takes the hour's row lock whether it inserts the row or finds it (DO UPDATE
  // locks, and a concurrent insert of the same key waits for ours), and its RETURNING reads
  // the newest committed `used`, never an older snapshot. The grant is decided under that lock
  // and added before COMMIT releases it: reservations queue on one row, briefly, and never add
  // up past the limit.
  // Why not one statement: ON CONFLICT … DO UPDATE … RETURNING shows only the new `used`, and
  // the grant needs the old one too (RETURNING old.* exists only from PostgreSQL 18).
  return pg.tx(async (sql) => {
    const [row] = (
      await sql.query<{ used: number }>(
        `INSERT INTO quota_usage AS q (account, window_start, used, updated_at) VALUES ($1, $2, 0, $3)
         ON CONFLICT (account, window_start) DO UPDATE SET updated_at = excluded.updated_at
         RETURNING q.used`,
        [account, windowStart, now],
      )
    ).rows;
    const granted = quotaGrant(row!.used, wanted, limit);
    if (granted > 0) {
      await sql.query('UPDATE quota_usage SET used = used + $1 WHERE account = $2 AND window_start = $3', [
        granted,
        account,
        windowStart,
      ]);
    }
    return granted;
  });
}

export async function releaseQuota(
  pg: PgDb,
  account: string,
  windowStart: Millis,
  count: number,
  now: Millis,
): Promise<void> {
  if (count <= 0) return;
  // One statement: the row lock orders it against reservations in flight.
  await pg.one(
    `UPDATE quota_usage SET used = greatest(used - $1, 0), updated_at = $2
     WHERE account = $3 AND window_start = $4`,
    [count, now, account, windowStart],
  );
}

export async function quotaUsed(pg: PgDb, account: string, windowStart: Millis): Promise<number> {
  const [row] = await pg.rows<{ used: number }>(
    'SELECT used FROM quota_usage WHERE account = $1 AND window_start = $2',
    [account, windowStart],
  );
  return row?.used ?? 0;
}
