/**
 * `newsletter prune` on SQLite: the ledger rows of old, final newsletters deleted, their counts
 * kept on the newsletter row (the rule: src/domain/prune.ts).
 *
 * The invariant: a row is deleted only once its newsletter is final, holds no unsettled row, and
 * carries `pruned_counts` taken from its whole ledger. Deciding and marking happen in one BEGIN
 * IMMEDIATE transaction, so no run or reconcile can change the newsletter between the check and
 * the mark; a final newsletter gets no new rows (claims need `sending`), so what is counted is
 * what is deleted. The deletes then run in batches of PRUNE_BATCH, each its own short
 * transaction, rather than one statement: SQLite has one write lock, and cron's send-due must not
 * wait behind a million-row delete past its busy timeout. A prune stopped halfway is finished by
 * the next one: the counts are taken once (never from a half-deleted ledger), the deletes resume.
 */
import { PRUNE_BATCH, type PruneCandidate, type PruneDecision, pruneDecision } from '../../domain/prune.js';
import type { Millis } from '../../domain/types.js';
import { FINAL_SQL, PRUNE_CANDIDATES, UNSETTLED_SQL } from '../prune-sql.js';
import type { PruneOutcome } from '../store.js';
import { ledgerCounts } from './audience.js';
import type { SqliteDb } from './db.js';

/** Every newsletter with ledger rows, as the prune sees it; nothing is written. */
export function pruneCandidates(c: SqliteDb): PruneCandidate[] {
  return c.deferred(
    () =>
      c
        .sql(
          `${PRUNE_CANDIDATES} WHERE EXISTS (SELECT 1 FROM deliveries d WHERE d.newsletter_id = n.id) ORDER BY n.id`,
        )
        .all() as PruneCandidate[],
  );
}

export function pruneNewsletter(
  c: SqliteDb,
  newsletterId: number,
  sentBefore: Millis,
  now: Millis,
): PruneOutcome {
  const decision = c.immediate((): PruneDecision | null => {
    const candidate = c.sql(`${PRUNE_CANDIDATES} WHERE n.id = ?`).get(newsletterId) as
      | PruneCandidate
      | undefined;
    if (!candidate) return null;
    const decided = pruneDecision(candidate, sentBefore);
    if (!decided.prune) return decided;
    // Taken once: a prune resumed after an interruption must not count a half-deleted ledger.
    c.sql(
      'UPDATE newsletters SET pruned_counts = ?, pruned_at = ? WHERE id = ? AND pruned_counts IS NULL',
    ).run(JSON.stringify(ledgerCounts(c, newsletterId)), now, newsletterId);
    return decided;
  });
  if (decision === null) return { newsletterId, pruned: false, reason: 'not-final', deleted: 0 };
  if (!decision.prune) return { newsletterId, pruned: false, reason: decision.reason, deleted: 0 };
  let deleted = 0;
  for (;;) {
    // Re-checks the mark on every batch and never deletes an unsettled row: belt and braces for
    // a newsletter changed between batches (it cannot be, see above).
    const batch = c.immediate(
      () =>
        c
          .sql(
            `DELETE FROM deliveries WHERE id IN (
               SELECT d.id FROM deliveries d JOIN newsletters n ON n.id = d.newsletter_id
               WHERE d.newsletter_id = ? AND n.pruned_counts IS NOT NULL AND n.status IN (${FINAL_SQL})
                 AND d.state NOT IN (${UNSETTLED_SQL})
               LIMIT ?)`,
          )
          .run(newsletterId, PRUNE_BATCH).changes,
    );
    deleted += batch;
    if (batch < PRUNE_BATCH) break;
  }
  return { newsletterId, pruned: true, reason: null, deleted };
}
