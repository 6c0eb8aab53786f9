/**
 * What a PostgreSQL database holds and what its tables take (with their indexes and TOAST), for
 * doctor's growth check (src/doctor/growth.ts). One statement, so one snapshot. Only this
 * schema's tables count: the database may hold other things, which are not ours to explain.
 */
import { footprintCounts } from '../footprint-sql.js';
import type { StorageFootprint } from '../store.js';
import type { PgDb } from './db.js';

export async function storageFootprint(pg: PgDb): Promise<StorageFootprint> {
  const [row] = await pg.rows<StorageFootprint>(
    `SELECT ${footprintCounts('pg_column_size')},
            (SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c
               JOIN pg_namespace ns ON ns.oid = c.relnamespace
              WHERE ns.nspname = current_schema() AND c.relkind = 'r') AS "databaseBytes",
            0 AS "freeBytes"`,
  );
  const n = (value: unknown) => Number(value ?? 0);
  return {
    subscribers: n(row?.subscribers),
    ledgerRows: n(row?.ledgerRows),
    otherRows: n(row?.otherRows),
    newsletterBytes: n(row?.newsletterBytes),
    databaseBytes: n(row?.databaseBytes),
    freeBytes: 0,
  };
}
