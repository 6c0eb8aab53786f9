-- 007: unsubscribing is per list (issue 14), as list owners and RFC 8058 expect.
--
-- `list_opt_outs`: one row per (list, address) that asked to get no more mail from that list,
-- with when and how (`source`: one-click, page, command, mailto). Keyed by the list's NAME and the
-- normalised ADDRESS, not by ids, on purpose: an opt-out must outlive everything a list owner does
-- to memberships and subscribers. `recipients remove` (the subscriber row goes), `import --sync`
-- (the membership goes), `lists delete` and a list created again under the same name all leave it
-- in place, so a later import never brings the person back to that list. `lists rename` renames
-- it along with the list; `recipients resubscribe` and `recipients forget` delete it.
--
-- The audience (src/store/conditions.ts, inAudience) leaves out a member whose list they left;
-- they stay members, as a globally unsubscribed subscriber stays a row.
CREATE TABLE list_opt_outs (
  list_name  TEXT NOT NULL,
  address    TEXT NOT NULL,                 -- normalised, as in subscribers and suppressions
  source     TEXT NOT NULL,                 -- one-click, page, command, mailto
  created_at INTEGER NOT NULL,
  PRIMARY KEY (list_name, address)
) WITHOUT ROWID;
CREATE INDEX list_opt_outs_by_address ON list_opt_outs (address);

-- How a global opt-out (status 'unsubscribed') was made: one-click (a v1 link, today's meaning),
-- page-all (the page's "all mail from us"), command, mailto. NULL for opt-outs made before 007.
ALTER TABLE subscribers ADD COLUMN unsubscribe_source TEXT;
