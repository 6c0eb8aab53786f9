-- 007: segments (issue 14). A newsletter may go to part of its lists: `create --where FIELD=VALUE`
-- (repeatable, all must hold), `--where FIELD!=VALUE`, `--exclude-list L`. The segment is kept
-- here, {"where":[{"field","op","value"}…],"excludeLists":[…]} (src/domain/segment.ts); NULL is
-- the whole lists, which every newsletter created before this migration keeps. SQLite's is 006.

ALTER TABLE newsletters ADD COLUMN segment jsonb;

-- A segment names the lists it excludes, as `show` prints them. A list renamed (`lists rename`,
-- however it is done) is renamed in every segment that excludes it, so the exclusion holds.
CREATE FUNCTION segments_follow_list_rename() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE newsletters
     SET segment = jsonb_set(segment, '{excludeLists}',
           (SELECT jsonb_agg(CASE WHEN x = OLD.name THEN NEW.name ELSE x END)
              FROM jsonb_array_elements_text(segment -> 'excludeLists') AS x))
   WHERE segment -> 'excludeLists' ? OLD.name;
  RETURN NEW;
END
$$;
CREATE TRIGGER segments_follow_list_rename AFTER UPDATE OF name ON lists
  FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name) EXECUTE FUNCTION segments_follow_list_rename();

-- A list that a scheduled or sending newsletter excludes cannot be deleted: its members would be
-- mailed after all. (A draft's segment keeps the name; `create`/`edit` check names again.)
CREATE FUNCTION segments_keep_excluded_list() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM newsletters n
              WHERE n.status IN ('scheduled', 'sending') AND n.segment -> 'excludeLists' ? OLD.name) THEN
    RAISE EXCEPTION 'a scheduled or sending newsletter excludes this list (--exclude-list); cancel it, or wait until it is sent, then delete the list';
  END IF;
  RETURN OLD;
END
$$;
CREATE TRIGGER segments_keep_excluded_list BEFORE DELETE ON lists
  FOR EACH ROW EXECUTE FUNCTION segments_keep_excluded_list();
