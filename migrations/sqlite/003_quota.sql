-- 003: the sending account's hourly quota (NEWSLETTER_HOURLY_LIMIT), counted in the database.
--
-- One row per (account, clock hour): `used` is how many messages runs have reserved in that hour,
-- minus what they gave back unused. Every run reserves before it claims (BEGIN IMMEDIATE), so
-- runs started together never take more than the limit between them. Old hours stay as history:
-- one row per account and hour, a few thousand a year.

CREATE TABLE quota_usage (
  account      TEXT NOT NULL,                   -- NEWSLETTER_QUOTA_ACCOUNT, or the SMTP user@host
  window_start INTEGER NOT NULL,                -- the hour's start, epoch milliseconds (UTC)
  used         INTEGER NOT NULL DEFAULT 0 CHECK (used >= 0),
  updated_at   INTEGER NOT NULL,
  PRIMARY KEY (account, window_start)
) WITHOUT ROWID;
