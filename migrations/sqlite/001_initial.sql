-- 001: the ledger model. Times are epoch milliseconds (INTEGER).

CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

-- An audit trail of operator decisions (host adopt, reconcile, cancel).
CREATE TABLE events (
  id     INTEGER PRIMARY KEY,
  at     INTEGER NOT NULL,
  kind   TEXT NOT NULL,
  detail TEXT NOT NULL
);

CREATE TABLE subscribers (
  id              INTEGER PRIMARY KEY,
  email           TEXT NOT NULL,                 -- as used on the envelope
  address         TEXT NOT NULL UNIQUE,          -- normalised (lower-case): the ledger key
  name            TEXT NOT NULL DEFAULT '',
  fields          TEXT NOT NULL DEFAULT '{}',    -- JSON: the other CSV columns
  status          TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'unsubscribed')),
  unsubscribed_at INTEGER,
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL
);

CREATE TABLE lists (
  id         INTEGER PRIMARY KEY,
  name       TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL
);

CREATE TABLE memberships (
  list_id       INTEGER NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
  subscriber_id INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
  created_at    INTEGER NOT NULL,
  PRIMARY KEY (list_id, subscriber_id)
) WITHOUT ROWID;
CREATE INDEX memberships_by_subscriber ON memberships (subscriber_id, list_id);

-- Every merge field an import has brought: a template may use exactly these (and the built-ins).
CREATE TABLE field_names (
  name TEXT PRIMARY KEY
) WITHOUT ROWID;

CREATE TABLE suppressions (
  address    TEXT PRIMARY KEY,
  reason     TEXT NOT NULL,
  source     TEXT NOT NULL,
  created_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE newsletters (
  id             INTEGER PRIMARY KEY,
  subject        TEXT NOT NULL,
  template_path  TEXT NOT NULL,
  from_address   TEXT,
  status         TEXT NOT NULL CHECK (status IN ('draft', 'scheduled', 'sending', 'sent', 'failed', 'cancelled')),
  scheduled_at   INTEGER,
  -- The verified body (JSON). Written only in the transaction that moves scheduled → sending,
  -- so a newsletter in `sending` always has the body that was checked (promise 3).
  body           TEXT,
  failure_reason TEXT,
  created_at     INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL,
  started_at     INTEGER,
  finished_at    INTEGER,
  started_by_run INTEGER,
  CHECK (status NOT IN ('sending', 'sent') OR body IS NOT NULL)
);
CREATE INDEX newsletters_due ON newsletters (status, scheduled_at);

CREATE TABLE newsletter_lists (
  newsletter_id INTEGER NOT NULL REFERENCES newsletters (id) ON DELETE CASCADE,
  list_id       INTEGER NOT NULL REFERENCES lists (id),
  PRIMARY KEY (newsletter_id, list_id)
) WITHOUT ROWID;

CREATE TABLE runs (
  id          INTEGER PRIMARY KEY,
  host_id     TEXT NOT NULL,
  hostname    TEXT NOT NULL,
  pid         INTEGER NOT NULL,
  started_at  INTEGER NOT NULL,
  lease_until INTEGER NOT NULL,
  ended_at    INTEGER,
  outcome     TEXT,
  sent        INTEGER NOT NULL DEFAULT 0,
  failed      INTEGER NOT NULL DEFAULT 0,
  retry       INTEGER NOT NULL DEFAULT 0,
  unknown     INTEGER NOT NULL DEFAULT 0,
  skipped     INTEGER NOT NULL DEFAULT 0,
  error       TEXT
);
CREATE INDEX runs_live ON runs (ended_at, lease_until);

-- The ledger: one row per (newsletter, recipient). Inserting the row IS the claim, and it is
-- committed (synchronous=FULL) before any SMTP traffic for it. The UNIQUE key is promise 1: a
-- second run, host or retry cannot claim the same recipient of the same newsletter again.
CREATE TABLE deliveries (
  id              INTEGER PRIMARY KEY,
  newsletter_id   INTEGER NOT NULL REFERENCES newsletters (id),
  subscriber_id   INTEGER,                       -- kept as a number: the subscriber may be removed later
  address         TEXT NOT NULL,
  state           TEXT NOT NULL CHECK (state IN ('claimed', 'sent', 'failed', 'retry', 'unknown', 'skipped')),
  run_id          INTEGER REFERENCES runs (id),  -- the fence: only this run may write the outcome
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER,
  message_id      TEXT NOT NULL,
  smtp_reply      TEXT,
  queue_id        TEXT,
  reason          TEXT,                          -- why skipped / failed, in words
  claimed_at      INTEGER,
  updated_at      INTEGER NOT NULL,
  UNIQUE (newsletter_id, address)
);
CREATE INDEX deliveries_by_state ON deliveries (newsletter_id, state, next_attempt_at);
CREATE INDEX deliveries_claimed_by_run ON deliveries (run_id) WHERE state = 'claimed';
