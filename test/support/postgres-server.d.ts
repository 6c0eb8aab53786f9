/** Types of postgres-server.js (plain JavaScript, shared with the benchmark). */

export type PostgresAvailability =
  | { ok: true; bin: string; runAs: { user: string; uid: number; gid: number } | null }
  | { ok: false; reason: string };

export function findPostgres(): PostgresAvailability;

export interface PostgresServer {
  port: number;
  dir: string;
  /** The cluster's data folder (postmaster.pid is there). */
  data: string;
  /** The folder of initdb, pg_ctl and postgres. */
  bin: string;
  /** postgres://postgres@127.0.0.1:PORT/DATABASE (default `postgres`). */
  url(database?: string): string;
  /** `pg_ctl restart -m fast`: every session ends; the same port and data folder come back. */
  restart(): Promise<void>;
  /** `pg_ctl stop -m fast`, keeping the data folder for `startAgain()`. */
  stopFast(): Promise<void>;
  /** Starts the server stopped by `stopFast()` again, on the same port. */
  startAgain(): Promise<void>;
  stop(): Promise<void>;
  /** For a process that is exiting: no promise will be awaited any more. */
  stopSync(): void;
}

export function startPostgresServer(options: { label: string; settings?: string[] }): Promise<PostgresServer>;
