/**
 * The SQL both stores' `prune` run as it stands (src/store/sqlite/prune.ts, postgres/prune.ts):
 * the domain's lists of final statuses and unsettled states (src/domain/prune.ts) spelled as SQL,
 * and the query that shows each newsletter as the prune rule sees it.
 */
import { PRUNABLE_STATUSES, UNSETTLED_STATES } from '../domain/prune.js';

const quoted = (values: readonly string[]): string => values.map((value) => `'${value}'`).join(', ');

/** `state IN (…)` of the rows that keep a newsletter from being pruned. */
export const UNSETTLED_SQL = quoted(UNSETTLED_STATES);
/** `status IN (…)` of the newsletters that may be pruned. */
export const FINAL_SQL = quoted(PRUNABLE_STATUSES);

/** Every newsletter as a PruneCandidate; callers add their WHERE. */
export const PRUNE_CANDIDATES = `
  SELECT n.id AS "newsletterId", n.subject, n.status, n.finished_at AS "finishedAt",
         (SELECT count(*) FROM deliveries d WHERE d.newsletter_id = n.id) AS "ledgerRows",
         (SELECT count(*) FROM deliveries d WHERE d.newsletter_id = n.id AND d.state IN (${UNSETTLED_SQL})) AS unsettled
  FROM newsletters n`;
