/**
 * The store's PostgreSQL pool as its files use it: one statement in autocommit, or several in one
 * transaction; READ ONLY throughout when the store was opened read-only (--dry-run). No session
 * state: see connection.ts.
 */
import type { Pool } from 'pg';
import { poolSql, preparesStatements, type TxSql, transaction } from './connection.js';

export class PgDb {
  readonly pool: Pool;
  readonly url: string;
  readonly readonly: boolean;
  /** The server's `server_version_num` (150004 for 15.4), read when the store opens; 0 unknown. */
  serverVersion = 0;
  /** Statements marked `prepared` are named on the server (connection.ts, preparesStatements). */
  readonly prepares: boolean;

  constructor(pool: Pool, url: string, readonly: boolean) {
    this.pool = pool;
    this.url = url;
    this.readonly = readonly;
    this.prepares = preparesStatements(url);
  }

  /**
   * Runs `fn` in one transaction (READ COMMITTED). Every transaction of the store is short (an
   * import stages in short ones too), so each is ended by the server if its process stops halfway
   * while holding locks (connection.ts, limitIdle).
   */
  tx<T>(fn: (sql: TxSql) => Promise<T>): Promise<T> {
    return transaction(this.pool, this.url, { readonly: this.readonly, limitIdle: true }, fn);
  }

  /** One statement, autocommit; READ ONLY when the store was opened read-only. */
  async one<R>(text: string, values?: readonly unknown[]): Promise<{ rows: R[]; rowCount: number }> {
    if (this.readonly) return this.tx((sql) => sql.query<R>(text, values));
    return poolSql(this.pool, this.url).query<R>(text, values);
  }

  async rows<R>(text: string, values?: readonly unknown[]): Promise<R[]> {
    return (await this.one<R>(text, values)).rows;
  }
}
