/**
 * Connections to PostgreSQL, kept free of session state of their own so that a transaction-mode
 * pooler (pgbouncer) may hand every transaction to a different server connection: no session
 * advisory locks, no SET outside a transaction (only SET LOCAL, which ends with the transaction).
 *
 * One exception, on purpose (issue 17, session 6): the few statements a send runs per batch are
 * named, protocol-level prepared statements (`prepared`), so that PostgreSQL parses and plans them
 * once per connection instead of on every batch (about a third of the server's CPU per message).
 * A pooler must track those: pgbouncer does in transaction mode since 1.21, with
 * `max_prepared_statements` above 0. Where it cannot, `prepared_statements=off` in the URL turns
 * naming off (preparesStatements), and every statement uses the unnamed one as before; a pooler
 * that loses one shows up as SQLSTATE 26000 or 42P05, which pg-errors.ts explains (exit 5).
 *
 * Pipelined (pg's `pipeline` mode, issue 17): statements that do not wait for each other's answer
 * go out in one write, and PostgreSQL answers them in order. A transaction's BEGIN travels with its
 * first statements and, where the caller allows (TxSql.queryAndCommit), its COMMIT with its last:
 * on one host a batch's claim or record was bound by its round trips, not by the work in them
 * (bench/NOTES.md, issue 17, session 6). Every statement still has its own Sync, so each is
 * answered (or fails) on its own; a statement after a failed one in the same transaction fails
 * too ("current transaction is aborted"), and a COMMIT behind a failure only rolls back. This adds
 * no session state: a transaction-mode pooler sees one transaction's messages back to back.
 */
import { type Pool, type PoolClient, Pool as PgPool, type QueryConfig, TypeOverrides } from 'pg';
import { describePgError, isConnectionLoss } from './pg-errors.js';

/** What a query needs: a pool (autocommit) or the client of an open transaction. */
export interface Sql {
  query<R>(text: string, values?: readonly unknown[]): Promise<{ rows: R[]; rowCount: number }>;
}

/**
 * The client of an open transaction. Its queries are pipelined: call several before awaiting any
 * (Promise.all) when none needs another's answer; they run in the order called.
 */
export interface TxSql extends Sql {
  /**
   * `text`, then COMMIT, in one write: the transaction ends with this statement, and resolves
   * once both are answered (durable when it resolves). Nothing may be queried after it. If the
   * statement fails, the COMMIT only rolls back, and the statement's error is what is thrown.
   */
  queryAndCommit<R>(text: string, values?: readonly unknown[]): Promise<{ rows: R[]; rowCount: number }>;
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

/**
 * Named (server-side prepared) statements, for the statements of the send path that say so
 * (`prepared`), per pool. See preparesStatements and ledgerGrew.
 */
interface Naming {
  /** Each marked text's name in the current generation. */
  names: Map<string, string>;
  /** Names are never reused, even across generations: pg refuses a name with another text. */
  issued: number;
  /** Ledger rows this process has added through the pool (ledgerGrew). */
  rows: number;
  generation: number;
}
const namingPools = new WeakMap<Pool, Naming>();
/** The statements marked `prepared`, whatever the pool: their texts are few and fixed. */
const preparedTexts = new Set<string>();
/** A bound on the texts a process marks (a segment makes its own candidate query). */
const MAX_PREPARED = 64;

/**
 * Marks `text` as a statement to prepare on the server once per connection and execute by name
 * after that: PostgreSQL then parses and plans it once (a plan it may keep for every later call)
 * instead of on every call. For the few statements a send runs per batch; returns `text`.
 */
export function prepared(text: string): string {
  if (preparedTexts.size < MAX_PREPARED) preparedTexts.add(text);
  return text;
}

/**
 * Whether the pool for `url` names its prepared statements: yes, unless the URL says
 * `prepared_statements=off` (also `false`, `0`, `no`). A named statement lives in one server
 * session; a transaction-mode pooler (pgbouncer) hands each transaction to any server session, so
 * it needs pgbouncer 1.21 or newer with `max_prepared_statements` above 0 (it then tracks
 * protocol-level prepared statements itself), or this parameter (README "PostgreSQL").
 */
/**
 * The send path added `rows` to the ledger through this pool. A prepared statement may keep a
 * plan made once, from the tables' sizes at the time; the ledger starts empty and grows by a
 * batch every few milliseconds, and a plan made on an empty ledger reads it whole (a Seq Scan
 * under the candidate query's anti join: a send of n recipients would cost O(n²)). So the
 * statements get new names, hence new plans, each time the rows added here double (64, 128,
 * 256, …): about 14 generations for a million recipients, each plan made on a ledger at least
 * half the size of the one it serves. The old statements stay prepared on their connections
 * (a few kB each) until the connection closes; a pooler that tracks them evicts the least used.
 */
export function ledgerGrew(pool: Pool, rows: number): void {
  const naming = namingPools.get(pool);
  if (!naming || rows <= 0) return;
  naming.rows += rows;
  const generation = naming.rows < 64 ? 0 : Math.floor(Math.log2(naming.rows / 64)) + 1;
  if (generation === naming.generation) return;
  naming.generation = generation;
  naming.names.clear();
}

export function preparesStatements(url: string): boolean {
  let value: string | null = null;
  try {
    value = new URL(url).searchParams.get('prepared_statements');
  } catch {
    // Not a URL (a bare connection string): pg reports it when connecting.
  }
  return !(value !== null && /^(off|false|0|no)$/i.test(value.trim()));
}

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
    // See the header: queries issued before the previous one is answered go out at once.
    pipeline: true,
  });
  // An idle connection that the server drops (restart, terminated backend, pgbouncer) must not
  // crash the process: pg-pool has already removed it, and reports it here only. The next query
  // gets a new connection, or a clear error. Checked-out clients: see checkOut.
  pool.on('error', () => undefined);
  if (preparesStatements(url)) namingPools.set(pool, { names: new Map(), issued: 0, rows: 0, generation: 0 });
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
 * Promise.all for statements pipelined on one transaction's client: waits until EVERY one is
 * answered, then throws the first failure (in the order given) or returns the answers. (With
 * Promise.all the caller could roll back and hand the connection back while answers are still on
 * their way.)
 */
export async function answers<T extends readonly unknown[] | []>(
  pending: T,
): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const settled = await Promise.allSettled(pending);
  for (const one of settled) if (one.status === 'rejected') throw one.reason;
  return settled.map((one) => (one as PromiseFulfilledResult<unknown>).value) as {
    -readonly [K in keyof T]: Awaited<T[K]>;
  };
}

/**
 * Runs `fn` in one transaction on one connection (READ COMMITTED, the default). Everything
 * `fn` does commits together or not at all; any error rolls back and is rethrown. A lost
 * connection rejects with TransientDatabaseError (pg-errors.ts), never crashes the process.
 *
 * BEGIN is not awaited: it goes out with `fn`'s first statements. An idle connection that the
 * server closed while this process was not looking (a restart, a terminated backend, a paused
 * process, a pooler recycling it) is only found out when it is used, and BEGIN is its first use.
 * When BEGIN itself failed on a lost connection, nothing of `fn` reached the server (its
 * statements were behind BEGIN on that connection, and no COMMIT can have been sent: `fn` awaits
 * an answer before it commits, and every answer after BEGIN's failed too), so `fn` is run once
 * more on a new connection; a second failure is real. (`fn` does nothing but queries before
 * its first answer, so running it again repeats nothing else.)
 */
export async function transaction<T>(
  pool: Pool,
  url: string,
  options: TransactionOptions,
  fn: (sql: TxSql) => Promise<T>,
): Promise<T> {
  const timeout = options.limitIdle ? IDLE_IN_TRANSACTION : '0';
  const beginStatement = `BEGIN${options.readonly ? ' READ ONLY' : ''}; SET LOCAL idle_in_transaction_session_timeout = '${timeout}'`;
  for (let attempt = 1; ; attempt++) {
    const session = await checkOut(pool, url);
    // Settled (never rejects): whether BEGIN was answered without error.
    const begun = session.sql.query(beginStatement).then(
      () => null,
      (error: unknown) => ({ error }),
    );
    try {
      const result = await fn(session.sql);
      // A BEGIN that failed while the connection stayed up (no known case) would leave `fn`'s
      // statements in autocommit: refuse to report success on it.
      const failed = await begun;
      if (failed) throw failed.error;
      // If the connection drops while COMMIT is on its way, the server may or may not have
      // committed: the caller gets the same transient error either way, so every write that the
      // engine retries must be one that is harmless to repeat (the fences make them so).
      if (!session.committed()) await session.sql.query('COMMIT');
      return result;
    } catch (error) {
      const failed = await begun;
      await session.rollback();
      if (failed && attempt < 2 && session.lost()) continue;
      throw failed && !session.lost() ? failed.error : error;
    } finally {
      session.release();
    }
  }
}

/** A connection checked out of the pool for one transaction. */
interface Session {
  sql: TxSql;
  /** queryAndCommit was called: the transaction is over, committed or rolled back. */
  committed(): boolean;
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
  let ended = false;
  const naming = namingPools.get(pool);
  async function query<R>(text: string, values?: readonly unknown[]) {
    // pg would only say "not queryable"; the first failure says what happened.
    if (failure) throw describePgError(failure, url);
    if (ended) throw new Error(`a query after the transaction's COMMIT: ${text.slice(0, 40)}`);
    try {
      const config: QueryConfig = { text, values: (values ?? []) as unknown[] };
      if (naming && preparedTexts.has(text)) config.name = nameOf(naming, text);
      const result = await client.query(config);
      return { rows: result.rows as R[], rowCount: result.rowCount ?? 0 };
    } catch (error) {
      if (isConnectionLoss(error)) failure ??= error;
      throw describePgError(failure ?? error, url);
    }
  }
  return {
    sql: {
      query,
      async queryAndCommit<R>(text: string, values?: readonly unknown[]) {
        const statement = query<R>(text, values);
        const commit = query('COMMIT');
        ended = true;
        // Both are answered before this returns or throws (the connection goes back to the pool
        // only then); the statement's error comes first (a COMMIT behind a failed statement
        // answers ROLLBACK, without error).
        const [result, committed] = await Promise.allSettled([statement, commit]);
        if (result.status === 'rejected') throw result.reason;
        if (committed.status === 'rejected') throw committed.reason;
        return result.value;
      },
    },
    committed: () => ended,
    lost: () => failure !== null,
    async rollback() {
      if (failure || ended) return;
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

/** The statement's name in this pool's current generation: pg prepares it once per connection. */
function nameOf(naming: Naming, text: string): string {
  let name = naming.names.get(text);
  if (name === undefined) {
    naming.issued += 1;
    name = `newsletter_${naming.issued}`;
    naming.names.set(text, name);
  }
  return name;
}
