/**
 * The row counts doctor's growth check weighs a database's size against (src/doctor/growth.ts),
 * one query text for both dialects; each store adds what only it can measure (page counts on
 * SQLite, relation sizes on PostgreSQL).
 */

/** `columnSize` is the dialect's function for a stored value's size: `length` or `pg_column_size`. */
export function footprintCounts(columnSize: 'length' | 'pg_column_size'): string {
  return `(SELECT count(*) FROM subscribers) AS subscribers,
          (SELECT count(*) FROM deliveries) AS "ledgerRows",
          (SELECT count(*) FROM suppressions) + (SELECT count(*) FROM bounce_events)
            + (SELECT count(*) FROM runs) + (SELECT count(*) FROM events)
            + (SELECT count(*) FROM memberships) + (SELECT count(*) FROM quota_usage)
            + (SELECT count(*) FROM list_opt_outs) AS "otherRows",
          (SELECT coalesce(sum(coalesce(${columnSize}(body), 0) + length(template_path)
            + coalesce(${columnSize}(template_source), 0)
            + coalesce(${columnSize}(template_compiled), 0)), 0) FROM newsletters)
            AS "newsletterBytes"`;
}
