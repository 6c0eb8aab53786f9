-- 011: where a run's pid means something (issue 16). `pid_scope` is the kernel's boot id and the
-- run's pid namespace (src/host/pid-scope.ts). A run ends another run of its own host id at once,
-- because that run's process is gone, only when both have the same scope: a pid looked up in
-- another container, on another machine or after a reboot says nothing. NULL (runs recorded before
-- this migration): never ended that way, only when their lease passes. SQLite's is 010.

ALTER TABLE runs ADD COLUMN pid_scope text;
