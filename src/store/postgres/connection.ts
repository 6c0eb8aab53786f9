/**
 * Connections to PostgreSQL, kept free of session state so that a transaction-mode pooler
 * (pgbouncer) may hand every transaction to a different server connection: no session advisory
 * locks, no named prepared statements (pg's parameterised queries use the unnamed statement), no
 * SET outside a transaction (only SET LOCAL, which ends with the transaction).
 */
import { type Pool, type PoolClient, Pool as PgPool, TypeOverrides } from 'pg';
import { describeDatabase } from '../../config.js';
import { DatabaseError } from '../../domain/errors.js';

/** What a query needs: a pool (autocommit) or the client of an open transaction. */
export interface Sql {
  query<R>(text: string, values?: readonly unknown[]): Promise<{ rows: R[]; rowCount: number }>;
}

export interface TransactionOptions {
  readonly: boolean;
  /**
   * False for the one transaction that legitimately waits on its caller (a streamed import).
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
  // An idle connection that the server drops (restart, pgbouncer) must not crash the process;
  // the next query gets a new connection, or a clear error.
  pool.on('error', () => undefined);
  return pool;
}

function wrap(client: Pool | PoolClient, url: string): Sql {
  return {
    async query<R>(text: string, values?: readonly unknown[]) {
      try {
        const result = await client.query(text, values as unknown[] | undefined);
        return { rows: result.rows as R[], rowCount: result.rowCount ?? 0 };
      } catch (error) {
        throw describePgError(error, url);
      }
    },
  };
}

/** Autocommit queries on the pool. */
export function poolSql(pool: Pool, url: string): Sql {
  return wrap(pool, url);
}

/**
 * Runs `fn` in one transaction on one connection (READ COMMITTED, the default). Everything
 * `fn` does commits together or not at all; any error rolls back and is rethrown.
 */
export async function transaction<T>(
  pool: Pool,
  url: string,
  options: TransactionOptions,
  fn: (sql: Sql) => Promise<T>,
): Promise<T> {
  let client: PoolClient;
  try {
    client = await pool.connect();
  } catch (error) {
    throw describePgError(error, url);
  }
  let broken = false;
  try {
    const timeout = options.limitIdle ? IDLE_IN_TRANSACTION : '0';
    await wrap(client, url).query(
      `BEGIN${options.readonly ? ' READ ONLY' : ''}; SET LOCAL idle_in_transaction_session_timeout = '${timeout}'`,
    );
    const result = await fn(wrap(client, url));
    await wrap(client, url).query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {
      broken = true;
    });
    throw error;
  } finally {
    // A connection whose ROLLBACK failed is in an unknown state: destroy it, never reuse it.
    client.release(broken ? true : undefined);
  }
}

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EPIPE',
]);

/** Turns pg's errors into messages that say what to do; leaves the others (bugs) as they are. */
export function describePgError(error: unknown, url: string): Error {
  if (error instanceof DatabaseError) return error;
  const where = describeDatabase({ kind: 'postgres', url });
  const code = String((error as { code?: unknown }).code ?? '');
  const message = (error as Error)?.message ?? String(error);
  if (
    CONNECTION_CODES.has(code) ||
    /timeout exceeded when trying to connect|Connection terminated/i.test(message)
  ) {
    return new DatabaseError(`Cannot reach the PostgreSQL server of ${where} (${code || message}).`, [
      'Check that the server is running and reachable from this host, and the host and port in NEWSLETTER_DATABASE.',
    ]);
  }
  if (code === '28P01' || code === '28000') {
    return new DatabaseError(`PostgreSQL refused the login for ${where} (${code}).`, [
      'Check the user and password in NEWSLETTER_DATABASE, and pg_hba.conf on the server.',
    ]);
  }
  if (code === '3D000') {
    return new DatabaseError(`The database of ${where} does not exist.`, [
      'Create it first (e.g. `createdb newsletter`), then run `newsletter init`.',
    ]);
  }
  if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03' || code === '53300') {
    return new DatabaseError(`The PostgreSQL connection failed: ${message} (${code}).`, [
      'The server restarted, is shutting down or has no free connection slot; the next run continues.',
    ]);
  }
  if (code === '40001' || code === '40P01' || code === '55P03' || code === '25P03') {
    return new DatabaseError(`PostgreSQL gave up on a busy transaction: ${message} (${code}).`, [
      'Another run or an operator held the same rows; nothing was half-written. The next run continues.',
    ]);
  }
  if (code === '25006') {
    return new DatabaseError('This command opened the database read-only, but tried to write.', [
      'This is a bug in newsletter; please report it with the command you ran.',
    ]);
  }
  return error instanceof Error ? error : new Error(message);
}
