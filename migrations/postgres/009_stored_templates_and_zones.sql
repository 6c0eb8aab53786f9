-- 009: a newsletter keeps what was tested (issue 14). `create` and `edit` store the template and
-- every file it includes, as read then (`template_source`: a JSON array of {path, content}, paths
-- relative to the template's folder, the template first), and when (`template_stored_at`); a send
-- compiles exactly these, never the files on disk again (src/render/stored-template.ts). NULL for
-- a newsletter created before this migration: SQL cannot read files, so those are read from
-- `template_path` at build time as before, and `show` says so until `edit --template` stores one.
-- `template_source` is text, not jsonb: the bytes come back exactly as stored, as SQLite's do.
-- `scheduled_zone` is the zone `--at` was typed in (an IANA name such as Europe/Paris, or an
-- offset such as +01:00); NULL: the zone of TZ where the time is shown (src/domain/zone.ts).
-- SQLite's is 008.

ALTER TABLE newsletters ADD COLUMN template_source text;
ALTER TABLE newsletters ADD COLUMN template_stored_at bigint;
ALTER TABLE newsletters ADD COLUMN scheduled_zone text;
