-- 004: subscriber ids are never reused, and erased addresses stay opted out (issue 13).
--
-- An unsubscribe token names a subscriber by id. Without AUTOINCREMENT, SQLite gives a new row
-- max(id) + 1, so removing the newest subscriber and adding another handed the removed person's
-- id (and every link they were ever sent) to a stranger. AUTOINCREMENT never hands an id out twice.
-- SQLite cannot add it to a table in place: subscribers is rebuilt with every id kept, and
-- memberships with it (its foreign key must name the new table; dropping the old subscribers table
-- first would cascade-delete every membership). deliveries.subscriber_id is a plain number and is
-- left as it is. The sequence starts past every id the ledger has ever seen, so an id removed
-- before this migration is not handed out again either.

CREATE TABLE subscribers_rebuilt (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  email           TEXT NOT NULL,                 -- as used on the envelope
  address         TEXT NOT NULL UNIQUE,          -- normalised (lower-case): the ledger key
  name            TEXT NOT NULL DEFAULT '',
  fields          TEXT NOT NULL DEFAULT '{}',    -- JSON: the other CSV columns
  status          TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'unsubscribed')),
  unsubscribed_at INTEGER,
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL
);
INSERT INTO subscribers_rebuilt (id, email, address, name, fields, status, unsubscribed_at, created_at, updated_at)
  SELECT id, email, address, name, fields, status, unsubscribed_at, created_at, updated_at FROM subscribers;

CREATE TABLE memberships_rebuilt (
  list_id       INTEGER NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
  subscriber_id INTEGER NOT NULL REFERENCES subscribers_rebuilt (id) ON DELETE CASCADE,
  created_at    INTEGER NOT NULL,
  PRIMARY KEY (list_id, subscriber_id)
) WITHOUT ROWID;
INSERT INTO memberships_rebuilt (list_id, subscriber_id, created_at)
  SELECT list_id, subscriber_id, created_at FROM memberships;

DROP TABLE memberships;
DROP TABLE subscribers;
-- Renaming also rewrites memberships_rebuilt's foreign key to name `subscribers`.
ALTER TABLE subscribers_rebuilt RENAME TO subscribers;
ALTER TABLE memberships_rebuilt RENAME TO memberships;
CREATE INDEX memberships_by_subscriber ON memberships (subscriber_id, list_id);

DELETE FROM sqlite_sequence WHERE name IN ('subscribers', 'subscribers_rebuilt');
INSERT INTO sqlite_sequence (name, seq)
  SELECT 'subscribers', max(coalesce((SELECT max(id) FROM subscribers), 0),
                            coalesce((SELECT max(subscriber_id) FROM deliveries), 0));

-- `recipients forget`: what is left of an erased person is a keyed hash of the address
-- (HMAC-SHA256 under the per-database key in meta `forget_key`, src/domain/forgotten.ts), so
-- that a re-import or `recipients add` of the same address stays out, and nothing else.
CREATE TABLE forgotten_addresses (
  address_hash TEXT PRIMARY KEY,
  created_at   INTEGER NOT NULL
) WITHOUT ROWID;
