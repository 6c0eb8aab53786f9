/**
 * `newsletter prune` on PostgreSQL: the ledger rows of old, final newsletters deleted, their
 * counts kept on the newsletter row (the rule: src/domain/prune.ts).
 *
 * The invariant: a row is deleted only once its newsletter is final, holds no unsettled row, and
 * carries `pruned_counts` taken from its whole ledger. The check and the mark run in one
 * transaction holding the newsletter's row FOR UPDATE: claims hold it FOR SHARE and a cancel or
 * a `reconcile --resend` updates it, so none of them can change the newsletter between the check
 * and the mark, on any host; a final newsletter gets no new rows, so what is counted is what is
 * deleted. The deletes then run in batches of PRUNE_BATCH, each its own statement, rather than
 * one: a million-row DELETE would keep one long transaction open (and its WAL and dead rows) while
 * every host goes on sending. A prune stopped halfway is finished by the next one: the counts are
 * taken once, the deletes resume.
 */
import { PRUNE_BATCH, type PruneCandidate, type PruneDecision, pruneDecision } from '../../domain/prune.js';
import type { Millis } from '../../domain/types.js';
import { FINAL_SQL, PRUNE_CANDIDATES, UNSETTLED_SQL } from '../prune-sql.js';
import type { PruneOutcome } from '../store.js';
import { ledgerCounts } from './audience.js';
import type { PgDb } from './db.js';

/** Every newsletter with ledger rows, as the prune sees it; nothing is written. */
export async function pruneCandidates(pg: PgDb): Promise<PruneCandidate[]> {
  return pg.rows<PruneCandidate>(
    `${PRUNE_CANDIDATES} WHERE EXISTS (SELECT 1 FROM deliveries d WHERE d.newsletter_id = n.id) ORDER BY n.id`,
  );
}

export async function pruneNewsletter(
  pg: PgDb,
  newsletterId: number,
  sentBefore: Millis,
  now: Millis,
): Promise<PruneOutcome> {
  const decision = await pg.tx(async (sql): Promise<PruneDecision | null> => {
    const [locked] = (
      await sql.query<{ id: number }>('SELECT id FROM newsletters WHERE id = $1 FOR UPDATE', [newsletterId])
    ).rows;
    if (!locked) return null;
    const [candidate] = (
      await sql.query<PruneCandidate>(`${PRUNE_CANDIDATES} WHERE n.id = $1`, [newsletterId])
    ).rows;
    const decided = pruneDecision(candidate as PruneCandidate, sentBefore);
    if (!decided.prune) return decided;
    // Taken once: a prune resumed after an interruption must not count a half-deleted ledger.
    await sql.query(
      'UPDATE newsletters SET pruned_counts = $2::jsonb, pruned_at = $3 WHERE id = $1 AND pruned_counts IS NULL',
      [newsletterId, JSON.stringify(await ledgerCounts(sql, newsletterId)), now],
    );
    return decided;
  });
  if (decision === null) return { newsletterId, pruned: false, reason: 'not-final', deleted: 0 };
  if (!decision.prune) return { newsletterId, pruned: false, reason: decision.reason, deleted: 0 };
  let deleted = 0;
  for (;;) {
    // Re-checks the mark on every batch and never deletes an unsettled row: belt and braces for
    // a newsletter changed between batches (it cannot be, see above).
    const { rowCount } = await pg.one(
      `DELETE FROM deliveries WHERE id IN (
         SELECT d.id FROM deliveries d JOIN newsletters n ON n.id = d.newsletter_id
         WHERE d.newsletter_id = $1 AND n.pruned_counts IS NOT NULL AND n.status IN (${FINAL_SQL})
           AND d.state NOT IN (${UNSETTLED_SQL})
         LIMIT $2)`,
      [newsletterId, PRUNE_BATCH],
    );
    deleted += rowCount;
    if (rowCount < PRUNE_BATCH) break;
  }
  return { newsletterId, pruned: true, reason: null, deleted };
}
