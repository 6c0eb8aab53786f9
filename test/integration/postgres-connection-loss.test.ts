/**
 * A PostgreSQL connection lost in the middle of a transaction never crashes the process: the
 * transaction rejects with TransientDatabaseError (exit 9, "the next run continues"), and the
 * connection is destroyed, never handed out again. On a real server, with a real terminated
 * backend (pg_terminate_backend), no mocks.
 *
 * Why this needs a test: while a client is checked out of the pool, pg-pool no longer listens to
 * its 'error' event, and pg emits one when the connection ends between two queries. Without a
 * listener of our own, that event is thrown out of the socket's handler and ends the process
 * with a stack trace (what a paused send-due run did when its backends were terminated).
 */
import type { Pool, PoolClient } from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { TransientDatabaseError } from '../../src/domain/errors.js';
import { ExitCode } from '../../src/domain/exit-codes.js';
import { createPool, transaction } from '../../src/store/postgres/connection.js';
import {
  describePostgres,
  type PgCluster,
  type PgDatabase,
  sharedCluster,
  stopSharedCluster,
} from '../helpers/postgres.js';

const OPTIONS = { readonly: false, limitIdle: true };

describePostgres('PostgreSQL: a connection lost mid-transaction', () => {
  let cluster: PgCluster;
  let database: PgDatabase;
  let pool: Pool;
  let admin: Pool;
  /** The client the pool handed out last: the test waits on its 'end', never on a timer. */
  let lastAcquired: PoolClient | null;
  /** Errors that escaped every handler; the process would have died of the first one. */
  const escaped: unknown[] = [];
  const monitor = (error: unknown): void => {
    escaped.push(error);
  };

  beforeAll(async () => {
    cluster = await sharedCluster();
    // 'uncaughtExceptionMonitor' only observes: vitest still fails the run on such an error.
    process.on('uncaughtExceptionMonitor', monitor);
  });

  beforeEach(async () => {
    database = await cluster.createDatabase('connloss');
    pool = createPool(database.url, 2);
    lastAcquired = null;
    pool.on('acquire', (client: PoolClient) => {
      lastAcquired = client;
    });
    admin = createPool(cluster.adminUrl, 1);
    escaped.length = 0;
  });

  afterEach(async () => {
    await pool.end();
    await admin.end();
    await database.drop();
  });

  afterAll(async () => {
    process.off('uncaughtExceptionMonitor', monitor);
    await stopSharedCluster();
  });

  async function backendPid(sql: { query<R>(text: string): Promise<{ rows: R[] }> }): Promise<number> {
    const [row] = (await sql.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows;
    return row!.pid;
  }

  /** Terminates a backend and waits until its client here has seen the connection end. */
  async function terminate(pid: number): Promise<void> {
    const client = lastAcquired!;
    const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
    const { rows } = await admin.query<{ done: boolean }>('SELECT pg_terminate_backend($1) AS done', [pid]);
    expect(rows[0]?.done).toBe(true);
    await ended;
  }

  it('terminated between two queries: rejects with TransientDatabaseError, and the process stays up', async () => {
    let firstPid = 0;
    const outcome = transaction(pool, database.url, OPTIONS, async (sql) => {
      await sql.query('CREATE TABLE notes (body text)');
      await sql.query("INSERT INTO notes VALUES ('before')");
      firstPid = await backendPid(sql);
      // The connection ends while no query is running: the moment pg emits a bare 'error'.
      await terminate(firstPid);
      await sql.query("INSERT INTO notes VALUES ('after')");
    });

    const error = await outcome.catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(TransientDatabaseError);
    const transient = error as TransientDatabaseError;
    expect(transient.exitCode).toBe(ExitCode.transient);
    expect(transient.message).toMatch(/Lost the connection to the PostgreSQL server/);
    expect(transient.message).toMatch(/57P01|terminat/);
    expect(transient.details.join(' ')).toMatch(/the next run continues/);
    expect(escaped).toEqual([]);

    // Nothing of it was committed, and the broken connection is gone: the next transaction gets
    // a new backend and works.
    const after = await transaction(pool, database.url, OPTIONS, async (sql) => ({
      pid: await backendPid(sql),
      table: (await sql.query<{ name: string | null }>("SELECT to_regclass('notes')::text AS name")).rows[0]
        ?.name,
    }));
    expect(after.pid).not.toBe(firstPid);
    expect(after.table).toBeNull();
    expect(escaped).toEqual([]);
  });

  it('terminated while a query runs: the query rejects with TransientDatabaseError', async () => {
    const outcome = transaction(pool, database.url, OPTIONS, async (sql) => {
      const pid = await backendPid(sql);
      const client = lastAcquired!;
      const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
      const running = sql.query('SELECT pg_sleep(30)');
      // Observed from the start: it may fail before the terminate call has even returned.
      const settled = running.then(
        () => undefined,
        () => undefined,
      );
      // Terminate it once it is really running (pg_stat_activity shows the sleep), not on a timer.
      for (;;) {
        const { rows } = await admin.query<{ query: string }>(
          "SELECT query FROM pg_stat_activity WHERE pid = $1 AND state = 'active'",
          [pid],
        );
        if (rows[0]?.query.includes('pg_sleep')) break;
      }
      await admin.query('SELECT pg_terminate_backend($1)', [pid]);
      await Promise.all([settled, ended]);
      return running;
    });

    const error = await outcome.catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(TransientDatabaseError);
    expect((error as Error).message).toMatch(/57P01/);
    expect(escaped).toEqual([]);
    expect(pool.totalCount).toBe(0);
  });

  it('a server that cannot be reached: TransientDatabaseError, not a crash', async () => {
    const unreachable = createPool('postgres://postgres@127.0.0.1:1/nowhere', 1);
    try {
      const error = await transaction(unreachable, 'postgres://postgres@127.0.0.1:1/nowhere', OPTIONS, () =>
        Promise.resolve(),
      ).catch((thrown: unknown) => thrown);
      expect(error).toBeInstanceOf(TransientDatabaseError);
      expect((error as Error).message).toMatch(/Cannot reach the PostgreSQL server.*ECONNREFUSED/);
    } finally {
      await unreachable.end();
    }
  });
});
