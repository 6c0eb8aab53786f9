-- 006: segments (issue 14). A newsletter may go to part of its lists: `create --where FIELD=VALUE`
-- (repeatable, all must hold), `--where FIELD!=VALUE`, `--exclude-list L`. The segment is kept
-- here as JSON text, {"where":[{"field","op","value"}…],"excludeLists":[…]} (src/domain/segment.ts);
-- NULL is the whole lists, which every newsletter created before this migration keeps.
-- PostgreSQL's is 007.

ALTER TABLE newsletters ADD COLUMN segment TEXT;

-- A segment names the lists it excludes, as `show` prints them. A list renamed (`lists rename`,
-- however it is done) is renamed in every segment that excludes it, so the exclusion holds.
CREATE TRIGGER segments_follow_list_rename AFTER UPDATE OF name ON lists
WHEN OLD.name <> NEW.name
BEGIN
  UPDATE newsletters
     SET segment = json_set(segment, '$.excludeLists',
           json((SELECT json_group_array(CASE WHEN x.value = OLD.name THEN NEW.name ELSE x.value END)
                 FROM json_each(newsletters.segment, '$.excludeLists') x)))
   WHERE segment IS NOT NULL
     AND EXISTS (SELECT 1 FROM json_each(newsletters.segment, '$.excludeLists') x WHERE x.value = OLD.name);
END;

-- A list that a scheduled or sending newsletter excludes cannot be deleted: its members would be
-- mailed after all. (A draft's segment keeps the name; `create`/`edit` check names again.)
CREATE TRIGGER segments_keep_excluded_list BEFORE DELETE ON lists
WHEN EXISTS (SELECT 1 FROM newsletters n, json_each(n.segment, '$.excludeLists') x
             WHERE n.segment IS NOT NULL AND n.status IN ('scheduled', 'sending') AND x.value = OLD.name)
BEGIN
  SELECT RAISE(ABORT, 'a scheduled or sending newsletter excludes this list (--exclude-list); cancel it, or wait until it is sent, then delete the list');
END;
