/**
 * The sending account's hourly quota on SQLite (src/domain/quota.ts decides the grant): one row
 * per (account, hour), read and added to under the single write lock.
 */
import { quotaGrant } from '../../domain/quota.js';
import type { Millis } from '../../domain/types.js';
import type { SqliteDb } from './db.js';

export function reserveQuota(
  c: SqliteDb,
  account: string,
  windowStart: Millis,
  wanted: number,
  limit: number,
  now: Millis,
): number {
  // Read, decide and add under the write lock that BEGIN IMMEDIATE takes first: two processes
  // can never both read the same `used` and both take what is left.
  return c.immediate(() => {
    c.sql(
      'INSERT OR IGNORE INTO quota_usage (account, window_start, used, updated_at) VALUES (?, ?, 0, ?)',
    ).run(account, windowStart, now);
    const granted = quotaGrant(quotaUsed(c, account, windowStart), wanted, limit);
    if (granted > 0) {
      c.sql(
        'UPDATE quota_usage SET used = used + ?, updated_at = ? WHERE account = ? AND window_start = ?',
      ).run(granted, now, account, windowStart);
    }
    return granted;
  });
}

export function releaseQuota(
  c: SqliteDb,
  account: string,
  windowStart: Millis,
  count: number,
  now: Millis,
): void {
  if (count <= 0) return;
  c.sql(
    'UPDATE quota_usage SET used = max(used - ?, 0), updated_at = ? WHERE account = ? AND window_start = ?',
  ).run(count, now, account, windowStart);
}

export function quotaUsed(c: SqliteDb, account: string, windowStart: Millis): number {
  const row = c
    .sql('SELECT used FROM quota_usage WHERE account = ? AND window_start = ?')
    .get(account, windowStart) as { used: number } | undefined;
  return row?.used ?? 0;
}
