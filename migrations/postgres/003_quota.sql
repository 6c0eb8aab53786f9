-- 003: the sending account's hourly quota, as migrations/sqlite/003_quota.sql.
--
-- One row per (account, clock hour), shared by every host: a reservation locks the hour's row
-- (INSERT … ON CONFLICT DO UPDATE), so runs on any number of hosts never take more than the limit
-- between them. Old hours stay as history.

CREATE TABLE quota_usage (
  account      text NOT NULL,                   -- NEWSLETTER_QUOTA_ACCOUNT, or the SMTP user@host
  window_start bigint NOT NULL,                 -- the hour's start, epoch milliseconds (UTC)
  used         integer NOT NULL DEFAULT 0 CHECK (used >= 0),
  updated_at   bigint NOT NULL,
  PRIMARY KEY (account, window_start)
);
