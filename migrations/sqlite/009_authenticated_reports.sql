-- 009: authenticated bounces, complaints and mailto unsubscribes (issue 18).
--
-- A report counts only when it authenticates for one delivery (a VERP token, or one of our keyed
-- Message-IDs with that delivery's address: src/bounces/authenticate.ts). Its event then names
-- the delivery and is counted once per (delivery, kind): three forged "delayed" reports, or one
-- delayed report imported twice, count once. Rows written before this migration keep their
-- (dsn_id, address) identity and no delivery.
--
-- SQLite cannot change a CHECK constraint in place: bounce_events is rebuilt with every row kept
-- (nothing refers to it), so that kind may also be 'complaint' (an ARF feedback report).

CREATE TABLE bounce_events_rebuilt (
  id            INTEGER PRIMARY KEY,
  dsn_id        TEXT NOT NULL,                 -- the report's Message-ID, or sha256:<hex> of its bytes
  address       TEXT NOT NULL,                 -- normalised, as in subscribers and suppressions
  kind          TEXT NOT NULL CHECK (kind IN ('hard', 'soft', 'complaint')),
  status        TEXT NOT NULL,                 -- RFC 3463, e.g. 5.1.1; the Feedback-Type of a complaint
  reason        TEXT NOT NULL DEFAULT '',      -- the Diagnostic-Code, or the Action, in words
  at            INTEGER NOT NULL,
  cleared_at    INTEGER,
  delivery_id   INTEGER,                       -- the ledger row it authenticated for (null: before 009)
  newsletter_id INTEGER,                       -- kept here too: the counts outlive a prune of the ledger
  UNIQUE (dsn_id, address)
);
INSERT INTO bounce_events_rebuilt (id, dsn_id, address, kind, status, reason, at, cleared_at)
  SELECT id, dsn_id, address, kind, status, reason, at, cleared_at FROM bounce_events;
DROP TABLE bounce_events;
ALTER TABLE bounce_events_rebuilt RENAME TO bounce_events;
CREATE INDEX bounce_events_soft ON bounce_events (address) WHERE kind = 'soft' AND cleared_at IS NULL;
CREATE UNIQUE INDEX bounce_events_per_delivery ON bounce_events (delivery_id, kind) WHERE delivery_id IS NOT NULL;
CREATE INDEX bounce_events_by_newsletter ON bounce_events (newsletter_id, kind) WHERE newsletter_id IS NOT NULL;

-- The report (its Message-ID) that suppressed an address, for `suppress list`.
ALTER TABLE suppressions ADD COLUMN report_id TEXT;

-- A report that lost its VERP token is matched by the Message-ID it returns.
CREATE INDEX deliveries_by_message_id ON deliveries (message_id);
