/**
 * What a SQLite database holds and what it takes on disk, for doctor's growth check
 * (src/doctor/growth.ts). Read in one snapshot; the -wal file's size is doctor's to read, beside.
 */
import { footprintCounts } from '../footprint-sql.js';
import type { StorageFootprint } from '../store.js';
import type { SqliteDb } from './db.js';

export function storageFootprint(c: SqliteDb): StorageFootprint {
  return c.deferred(() => {
    const row = c.sql(`SELECT ${footprintCounts('length')}`).get() as Omit<
      StorageFootprint,
      'databaseBytes' | 'freeBytes'
    >;
    const pageSize = Number(c.db.pragma('page_size', { simple: true }));
    const pages = Number(c.db.pragma('page_count', { simple: true }));
    const free = Number(c.db.pragma('freelist_count', { simple: true }));
    return { ...row, databaseBytes: pages * pageSize, freeBytes: free * pageSize };
  });
}
