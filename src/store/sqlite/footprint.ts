/**
 * What a SQLite database holds and what it takes on disk, for doctor's growth check
 * (src/doctor/growth.ts). Read in one snapshot; the -wal file's size is doctor's to read, beside.
 */
import type { StorageFootprint } from '../store.js';
import type { SqliteDb } from './db.js';

export function storageFootprint(c: SqliteDb): StorageFootprint {
  return c.deferred(() => {
    const row = c
      .sql(
        `SELECT (SELECT count(*) FROM subscribers) AS subscribers,
                (SELECT count(*) FROM deliveries) AS "ledgerRows",
                (SELECT count(*) FROM suppressions) + (SELECT count(*) FROM bounce_events)
                  + (SELECT count(*) FROM runs) + (SELECT count(*) FROM events)
                  + (SELECT count(*) FROM memberships) + (SELECT count(*) FROM quota_usage) AS "otherRows",
                (SELECT coalesce(sum(coalesce(length(body), 0) + length(template_path)), 0) FROM newsletters)
                  AS "newsletterBytes"`,
      )
      .get() as Omit<StorageFootprint, 'databaseBytes' | 'freeBytes'>;
    const pageSize = Number(c.db.pragma('page_size', { simple: true }));
    const pages = Number(c.db.pragma('page_count', { simple: true }));
    const free = Number(c.db.pragma('freelist_count', { simple: true }));
    return { ...row, databaseBytes: pages * pageSize, freeBytes: free * pageSize };
  });
}
