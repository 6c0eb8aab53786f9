-- 006: `newsletter prune` (issue 15) deletes the ledger rows of old, final newsletters and keeps
-- their counts here, so that `show` and `status` print the same numbers after a prune as before
-- (src/domain/prune.ts). `pruned_counts` holds every count of DeliveryCounts, taken from the whole
-- ledger in the transaction that marks the newsletter pruned; `counts` reads it instead of the
-- rows whenever it is set. Both stay NULL for a newsletter never pruned. SQLite's is 005.

ALTER TABLE newsletters ADD COLUMN pruned_counts jsonb;
ALTER TABLE newsletters ADD COLUMN pruned_at bigint;
