/**
 * Query texts that the idle cron run asks too (src/store/sqlite/idle-probe.ts, loaded before
 * anything else every minute: this module imports nothing). The store runs them as they stand
 * here, so "is the schema current, is the database bound to this host, is anything due or
 * sending" means the same on the quick path and the normal one.
 */

/** The schema version the database is at (null: no migration recorded). */
export const SCHEMA_VERSION = 'SELECT max(version) AS version FROM schema_migrations';

/** One meta value, by key (`host_id`: the host the database is bound to). */
export const META_VALUE = 'SELECT value FROM meta WHERE key = ?';

/** A newsletter `n` that is due: scheduled, its time at or before the `?` bound to now. */
export const IS_DUE = "n.status = 'scheduled' AND n.scheduled_at <= ?";

/** A newsletter `n` that runs are sending. */
export const IS_SENDING = "n.status = 'sending'";
