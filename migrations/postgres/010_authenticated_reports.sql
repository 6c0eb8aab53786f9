-- 010: authenticated bounces, complaints and mailto unsubscribes (issue 18), as
-- migrations/sqlite/009_authenticated_reports.sql.
--
-- A report counts only when it authenticates for one delivery; its event then names the delivery
-- and is counted once per (delivery, kind), from any number of hosts at once. Rows written before
-- this migration keep their (dsn_id, address) identity and no delivery. kind may now also be
-- 'complaint' (an ARF feedback report).

ALTER TABLE bounce_events DROP CONSTRAINT IF EXISTS bounce_events_kind_check;
ALTER TABLE bounce_events ADD CONSTRAINT bounce_events_kind_check CHECK (kind IN ('hard', 'soft', 'complaint'));
ALTER TABLE bounce_events ADD COLUMN delivery_id bigint;
ALTER TABLE bounce_events ADD COLUMN newsletter_id bigint;
CREATE UNIQUE INDEX bounce_events_per_delivery ON bounce_events (delivery_id, kind) WHERE delivery_id IS NOT NULL;
CREATE INDEX bounce_events_by_newsletter ON bounce_events (newsletter_id, kind) WHERE newsletter_id IS NOT NULL;

-- The report (its Message-ID) that suppressed an address, for `suppress list`.
ALTER TABLE suppressions ADD COLUMN report_id text;

-- A report that lost its VERP token is matched by the Message-ID it returns.
CREATE INDEX deliveries_by_message_id ON deliveries (message_id);
