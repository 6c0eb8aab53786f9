-- 004: where `recipients import` stages its rows before publishing them (src/store/staged-import.ts,
-- src/store/postgres/import-staging.ts). PostgreSQL only: on SQLite an import stages in a TEMP table
-- of its own connection, which needs no schema.
--
-- Each import writes its rows under a random id, in short transactions, then publishes them into
-- `subscribers` in one. Nobody else reads these tables. UNLOGGED: the rows are a scratch copy of a
-- file that is still on disk, so they skip the WAL (and replicas); a server crash empties them, and
-- the publish then refuses because its rows are missing. An import killed halfway leaves its rows
-- here until the next import removes staged imports untouched for an hour.

CREATE UNLOGGED TABLE staged_imports (
  id         text PRIMARY KEY,                        -- random, known only to the importing process
  started_at timestamptz NOT NULL DEFAULT now(),
  touched_at timestamptz NOT NULL DEFAULT now()       -- the last batch staged: the database's clock
);

CREATE UNLOGGED TABLE import_staging (
  import_id   text NOT NULL REFERENCES staged_imports (id) ON DELETE CASCADE,
  seq         bigint NOT NULL,                        -- where the address first appeared in the file
  address     text NOT NULL,                          -- normalised, as in subscribers
  email       text NOT NULL,
  name        text NOT NULL,
  fields      jsonb NOT NULL,
  occurrences integer NOT NULL,                       -- rows of the file with this address
  PRIMARY KEY (import_id, address)
);
-- The publish reads an import's rows in file order, so that new subscribers get ids in that order.
CREATE INDEX import_staging_in_order ON import_staging (import_id, seq);
