-- 002: bounces read from delivery status notifications (`newsletter bounces import`, RFC 3464).
--
-- One row per (DSN, recipient): a DSN is known by its Message-ID (or the sha256 of its bytes when
-- it has none), and one DSN may report several recipients. The UNIQUE key is what makes importing
-- the same mailbox twice change nothing. Soft bounces (4.x.x, delayed) are counted per address
-- until `suppress remove` clears them (cleared_at); the rows stay, so a re-import still finds them.

CREATE TABLE bounce_events (
  id         INTEGER PRIMARY KEY,
  dsn_id     TEXT NOT NULL,
  address    TEXT NOT NULL,                 -- normalised, as in subscribers and suppressions
  kind       TEXT NOT NULL CHECK (kind IN ('hard', 'soft')),
  status     TEXT NOT NULL,                 -- RFC 3463, e.g. 5.1.1
  reason     TEXT NOT NULL DEFAULT '',      -- the Diagnostic-Code, or the Action, in words
  at         INTEGER NOT NULL,
  cleared_at INTEGER,
  UNIQUE (dsn_id, address)
);
CREATE INDEX bounce_events_soft ON bounce_events (address) WHERE kind = 'soft' AND cleared_at IS NULL;
