/**
 * Connections to PostgreSQL, kept free of session state so that a transaction-mode pooler
 * (pgbouncer) may hand every transaction to a different server connection: no session advisory
 * locks, no named prepared statements (pg's parameterised queries use the unnamed statement), no
 * SET outside a transaction (only SET LOCAL, which ends with the transaction).
 */
import { type Pool, type PoolClient, Pool as PgPool, TypeOverrides } from 'pg';
import { describePgError, isConnectionLoss } from './pg-errors.js';

/** What a query needs: a pool (autocommit) or the client of an open transaction. */
export interface Sql {
  query<R>(text: string, values?: readonly unknown[]): Promise<{ rows: R[]; rowCount: number }>;
}

export interface TransactionOptions {
  readonly: boolean;
  /**
   * False for the one transaction that legitimately waits on its caller (`migrate-db`'s copy,
   * src/store/copy.ts: it streams the SQLite file's rows in).
   * Every other transaction is short; if its process stops in the middle (SIGSTOP, a frozen VM)
   * while holding row locks, the server ends that session after IDLE_IN_TRANSACTION, so the
   * other hosts go on.
   */
  limitIdle: boolean;
}

const IDLE_IN_TRANSACTION = '30s';

export function createPool(url: string, max: number): Pool {
  // bigint (int8) comes back as a string by default; every bigint here is an id, a count or epoch
  // milliseconds, all far below 2^53. Per pool, so that nothing global is changed.
  const types = new TypeOverrides();
  types.setTypeParser(20, (value: string) => Number(value));
  const pool = new PgPool({
    connectionString: url,
    max,
    types,
    application_name: 'newsletter',
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 10_000,
    allowExitOnIdle: true,
  });
  // An idle connection that the server drops (restart, terminated backend, pgbouncer) must not
  // crash the process: pg-pool has already removed it, and reports it here only. The next query
  // gets a new connection, or a clear error. Checked-out clients: see checkOut.
  pool.on('error', () => undefined);
  return pool;
}

/**
 * Autocommit queries on the pool. pg-pool guards the client of each one itself (an error listener
 * while the query runs, its idle listener after); a query on a connection that failed rejects.
 */
export function poolSql(pool: Pool, url: string): Sql {
  return {
    async query<R>(text: string, values?: readonly unknown[]) {
      try {
        const result = await pool.query(text, values as unknown[] | undefined);
        return { rows: result.rows as R[], rowCount: result.rowCount ?? 0 };
      } catch (error) {
        throw describePgError(error, url);
      }
    },
  };
}

/**
 * Runs `fn` in one transaction on one connection (READ COMMITTED, the default). Everything
 * `fn` does commits together or not at all; any error rolls back and is rethrown. A lost
 * connection rejects with TransientDatabaseError (pg-errors.ts), never crashes the process.
 */
export async function transaction<T>(
  pool: Pool,
  url: string,
  options: TransactionOptions,
  fn: (sql: Sql) => Promise<T>,
): Promise<T> {
  const session = await begin(pool, url, options);
  try {
    const result = await fn(session.sql);
    // If the connection drops while COMMIT is on its way, the server may or may not have
    // committed: the caller gets the same transient error either way, so every write that the
    // engine retries must be one that is harmless to repeat (the fences make them so).
    await session.sql.query('COMMIT');
    return result;
  } catch (error) {
    await session.rollback();
    throw error;
  } finally {
    session.release();
  }
}

/**
 * Checks a connection out and opens the transaction. An idle connection that the server closed
 * while this process was not looking (a restart, a terminated backend, a paused process, a pooler
 * recycling it) is only found out when it is used, and BEGIN is its first use. BEGIN has done
 * nothing yet, so one more try on a new connection is always safe; a second failure is real.
 */
async function begin(pool: Pool, url: string, options: TransactionOptions): Promise<Session> {
  const timeout = options.limitIdle ? IDLE_IN_TRANSACTION : '0';
  const statement = `BEGIN${options.readonly ? ' READ ONLY' : ''}; SET LOCAL idle_in_transaction_session_timeout = '${timeout}'`;
  for (let attempt = 1; ; attempt++) {
    const session = await checkOut(pool, url);
    try {
      await session.sql.query(statement);
      return session;
    } catch (error) {
      session.release();
      if (attempt >= 2 || !session.lost()) throw error;
    }
  }
}

/** A connection checked out of the pool for one transaction. */
interface Session {
  sql: Sql;
  /** The connection failed (it is destroyed on release, never reused). */
  lost(): boolean;
  /** ROLLBACK, unless the connection is gone (the server has rolled back already). */
  rollback(): Promise<void>;
  /** Back to the pool, or destroyed if it failed. Call exactly once. */
  release(): void;
}

/**
 * While a client is checked out, pg-pool no longer listens to its 'error' event, and pg emits one
 * when the connection fails between two queries (a terminated backend, a server restart) or
 * after the query it failed: with no listener, that event would end the process with a stack
 * trace. So a listener is attached for exactly as long as the client is out; it records the
 * failure, every later query on that client rejects with it, and the client is destroyed on
 * release. pg-pool's own listener takes over in the same tick as the release.
 */
async function checkOut(pool: Pool, url: string): Promise<Session> {
  let client: PoolClient;
  try {
    client = await pool.connect();
  } catch (error) {
    throw describePgError(error, url);
  }
  let failure: unknown = null;
  const onError = (error: Error): void => {
    failure ??= error;
  };
  client.on('error', onError);
  let released = false;
  return {
    sql: {
      async query<R>(text: string, values?: readonly unknown[]) {
        // pg would only say "not queryable"; the first failure says what happened.
        if (failure) throw describePgError(failure, url);
        try {
          const result = await client.query(text, values as unknown[] | undefined);
          return { rows: result.rows as R[], rowCount: result.rowCount ?? 0 };
        } catch (error) {
          if (isConnectionLoss(error)) failure ??= error;
          throw describePgError(failure ?? error, url);
        }
      },
    },
    lost: () => failure !== null,
    async rollback() {
      if (failure) return;
      await client.query('ROLLBACK').catch((error: unknown) => {
        // A connection whose ROLLBACK failed is in an unknown state: destroy it, never reuse it.
        failure ??= error;
      });
    },
    release() {
      if (released) return;
      released = true;
      client.removeListener('error', onError);
      client.release(failure ? true : undefined);
    },
  };
}
