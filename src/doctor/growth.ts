/**
 * doctor's growth check: is the database (or its WAL) larger than what it holds explains? Pure.
 *
 * The rule, rough on purpose (README, "A database that lives for years"): a subscriber, a ledger
 * row, a suppression, a bounce, a run or an event takes well under GROWTH_BYTES_PER_ROW with its
 * indexes (about 0.15 to 0.3 KB measured, more with many CSV columns), the newsletters take their
 * stored bodies, and the schema and empty pages GROWTH_BASE_BYTES. A database past that is
 * holding something else: free pages left by a prune or a large delete (VACUUM gives them back),
 * or rows we do not count, which is worth a look.
 *
 * The WAL is separate: SQLite moves it into the database at every checkpoint and then writes it
 * again from its start, so it stays at most a few MB plus the largest transaction. One that grows
 * past WAL_LIMIT_BYTES and past the database itself means checkpoints cannot finish: a reader
 * (a backup tool, an sqlite3 shell, a stuck process) holds an old snapshot open.
 */
import type { StorageFootprint } from '../store/store.js';
import { type CheckResult, ok, warning } from './types.js';

export const GROWTH_BYTES_PER_ROW = 2 * 1024;
export const GROWTH_BASE_BYTES = 4 * 1024 * 1024;
export const WAL_LIMIT_BYTES = 64 * 1024 * 1024;

const mb = (bytes: number) => `${(bytes / (1024 * 1024)).toFixed(1)} MB`;

/** `walBytes`: the -wal file's size (SQLite), null where there is none to look at. */
export function growthCheck(footprint: StorageFootprint, walBytes: number | null): CheckResult[] {
  const rows = footprint.subscribers + footprint.ledgerRows + footprint.otherRows;
  const explained = GROWTH_BASE_BYTES + rows * GROWTH_BYTES_PER_ROW + footprint.newsletterBytes;
  const holds = `${footprint.subscribers} subscribers, ${footprint.ledgerRows} ledger rows, ${footprint.otherRows} other rows`;
  const results: CheckResult[] = [];
  if (footprint.databaseBytes > explained) {
    const free = footprint.freeBytes;
    results.push(
      warning(
        'growth',
        `The database takes ${mb(footprint.databaseBytes)}, more than its ${holds} explain (about ${mb(explained)} at most)${free > 0 ? `; ${mb(free)} of it are free pages` : ''}.`,
        free * 2 > footprint.databaseBytes
          ? 'Free pages are reused by later writes; to give them back to the disk, stop the cron line and run `sqlite3 DB "VACUUM"` (after `newsletter backup`).'
          : 'Look for what grows (`sqlite3 DB "SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC"`, or pg_total_relation_size per table); `newsletter prune` deletes the ledger rows of old newsletters.',
      ),
    );
  } else {
    results.push(
      ok('growth', `The database takes ${mb(footprint.databaseBytes)} for ${holds}: in proportion.`),
    );
  }
  if (walBytes !== null && walBytes > WAL_LIMIT_BYTES && walBytes > footprint.databaseBytes) {
    results.push(
      warning(
        'wal',
        `The WAL file is ${mb(walBytes)}, larger than the database (${mb(footprint.databaseBytes)}): checkpoints are not finishing.`,
        'Something keeps a read transaction open on the database (a backup tool, an sqlite3 shell, a hung process: `fuser DB`); end it, and the next write checkpoints.',
      ),
    );
  }
  return results;
}
