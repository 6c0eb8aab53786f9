-- 008: unsubscribing is per list (issue 14), as migrations/sqlite/007_list_opt_outs.sql, which says
-- why an opt-out is keyed by the list's name and the address rather than by ids (it outlives
-- remove, --sync, lists delete; lists rename renames it).
CREATE TABLE list_opt_outs (
  list_name  text NOT NULL,
  address    text NOT NULL,                 -- normalised, as in subscribers and suppressions
  source     text NOT NULL,                 -- one-click, page, command, mailto
  created_at bigint NOT NULL,
  PRIMARY KEY (list_name, address)
);
CREATE INDEX list_opt_outs_by_address ON list_opt_outs (address);

-- How a global opt-out was made (one-click, page-all, command, mailto); NULL before 008.
ALTER TABLE subscribers ADD COLUMN unsubscribe_source text;

-- An import's CSV may carry a `lists` column (what `recipients export` writes): the lists each
-- row joins, staged with the row and joined in the publish (src/store/staged-import.ts).
ALTER TABLE import_staging ADD COLUMN lists text[] NOT NULL DEFAULT '{}';
