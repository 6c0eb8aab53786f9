-- 012: the ledger's Message-ID index (010) as a hash index (issue 17, session 7). Every claim
-- inserts a row into it and every outcome write inserts one more (an outcome changes `state`, which
-- other indexes hold, so no outcome write is a HOT update and each writes a new entry into every
-- index). Message-IDs are long and look random, so each B-tree entry landed on a page of its own
-- and compared long keys on the way down: of the ledger's five indexes it was the dearest to keep
-- (bench/NOTES.md, issue 17, session 7: per batch of 20, the claim's INSERT 13 % and the outcome's
-- UPDATE 22 % faster as a hash index). Its only reader looks a Message-ID up by equality (a DSN or
-- an ARF report, src/store/postgres/reports.ts), which a hash index serves; it needs no order and
-- no uniqueness. Hash indexes are crash-safe and replicated since PostgreSQL 10, the oldest this
-- supports. SQLite has no hash index and keeps its B-tree (its 009).

DROP INDEX deliveries_by_message_id;
CREATE INDEX deliveries_by_message_id ON deliveries USING hash (message_id);
