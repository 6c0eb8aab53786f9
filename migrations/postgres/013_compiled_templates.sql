-- 013: the stored template's compiled HTML, kept (issue 17, session 8). `create` and `edit` compile
-- the stored template to check it; `template_compiled` keeps that HTML as JSON {key, html}, where
-- `key` is a sha256 over the template's own digest, MJML's version and the options it was compiled
-- with (src/render/compiled-template.ts). A build whose key is the same uses the HTML instead of
-- loading MJML (a few hundred milliseconds of CPU for every run that begins a newsletter) and
-- compiling again; any other key compiles the stored files as before. NULL: compiled at build time.
-- SQLite's is 011.

ALTER TABLE newsletters ADD COLUMN template_compiled TEXT;
