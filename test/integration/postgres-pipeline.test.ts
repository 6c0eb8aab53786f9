/**
 * How a transaction talks to PostgreSQL (src/store/postgres/connection.ts, issue 17): its
 * statements are pipelined, its last may carry the COMMIT (queryAndCommit), and the send path's
 * statements are prepared by name unless the URL says `prepared_statements=off` (for a
 * transaction-mode pooler that does not track them). On a real server, no mocks.
 *
 * Why this needs a test: a pipelined failure must still roll the whole transaction back and
 * surface as the failing statement's own error (not "current transaction is aborted", and never
 * as an unhandled rejection); a COMMIT sent behind a failed statement must commit nothing; and
 * the opt-out must leave no prepared statement in the server session, since a pooler may hand
 * that session to anyone.
 */
import type { Pool } from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import {
  answers,
  createPool,
  ledgerGrew,
  prepared,
  preparesStatements,
  transaction,
} from '../../src/store/postgres/connection.js';
import {
  describePostgres,
  type PgCluster,
  type PgDatabase,
  sharedCluster,
  stopSharedCluster,
} from '../helpers/postgres.js';

const OPTIONS = { readonly: false, limitIdle: true };
/** A statement of the kind the send path marks as prepared. */
const INSERT_NOTE = prepared('INSERT INTO notes (id, body) VALUES ($1, $2) RETURNING id');

describePostgres('PostgreSQL: pipelined transactions and prepared statements', () => {
  let cluster: PgCluster;
  let database: PgDatabase;
  let pool: Pool;
  /** Rejections nobody handled: a pipelined statement whose failure was dropped would land here. */
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };

  beforeAll(async () => {
    cluster = await sharedCluster();
    process.on('unhandledRejection', onUnhandled);
  });

  beforeEach(async () => {
    database = await cluster.createDatabase('pipeline');
    pool = createPool(database.url, 2);
    await transaction(pool, database.url, OPTIONS, (sql) =>
      sql.query('CREATE TABLE notes (id integer PRIMARY KEY, body text NOT NULL)'),
    );
    unhandled.length = 0;
  });

  afterEach(async () => {
    await pool.end();
    await database.drop();
  });

  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    await stopSharedCluster();
  });

  async function notes(): Promise<string[]> {
    const { rows } = await pool.query<{ body: string }>('SELECT body FROM notes ORDER BY id');
    return rows.map((row) => row.body);
  }

  it('statements sent together run in order, and queryAndCommit commits with the last', async () => {
    const result = await transaction(pool, database.url, OPTIONS, async (sql) => {
      const [first, second] = await answers([
        sql.query<{ id: number }>(INSERT_NOTE, [1, 'one']),
        sql.query<{ n: number }>('SELECT count(*)::int AS n FROM notes'),
      ]);
      const last = await sql.queryAndCommit<{ id: number }>(INSERT_NOTE, [2, 'two']);
      // The transaction is over: nothing may be sent in it any more.
      await expect(sql.query('SELECT 1')).rejects.toThrow(/after the transaction's COMMIT/);
      return { first: first.rows[0]?.id, seen: second.rows[0]?.n, last: last.rows[0]?.id };
    });
    expect(result).toEqual({ first: 1, seen: 1, last: 2 });
    expect(await notes()).toEqual(['one', 'two']);
    expect(unhandled).toEqual([]);
  });

  it('a failure among pipelined statements rolls everything back, with its own error', async () => {
    const outcome = transaction(pool, database.url, OPTIONS, async (sql) => {
      await answers([
        sql.query(INSERT_NOTE, [1, 'one']),
        sql.query(INSERT_NOTE, [1, 'the same key']),
        sql.query(INSERT_NOTE, [3, 'behind the failure']),
      ]);
    });
    await expect(outcome).rejects.toMatchObject({ code: '23505' });
    expect(await notes()).toEqual([]);
    expect(unhandled).toEqual([]);
  });

  it('a COMMIT behind a failed statement commits nothing, and the connection is used again', async () => {
    const outcome = transaction(pool, database.url, OPTIONS, async (sql) => {
      await sql.query(INSERT_NOTE, [1, 'one']);
      await sql.queryAndCommit(INSERT_NOTE, [1, 'the same key']);
    });
    await expect(outcome).rejects.toMatchObject({ code: '23505' });
    expect(await notes()).toEqual([]);
    // Both connections of the pool work afterwards (the failed one went back in a clean state).
    const bodies = await Promise.all(
      [10, 11].map((id) =>
        transaction(pool, database.url, OPTIONS, async (sql) => {
          await sql.queryAndCommit(INSERT_NOTE, [id, `note ${id}`]);
          return id;
        }),
      ),
    );
    expect(bodies).toEqual([10, 11]);
    expect(await notes()).toEqual(['note 10', 'note 11']);
    expect(unhandled).toEqual([]);
  });

  it('prepares the marked statements by name, unless the URL says prepared_statements=off', async () => {
    const preparedIn = async (target: Pool, url: string): Promise<string[]> =>
      transaction(target, url, OPTIONS, async (sql) => {
        await sql.query(INSERT_NOTE, [Math.floor(Math.random() * 1e9), 'x']);
        // Unmarked statements are never named.
        await sql.query('SELECT count(*) FROM notes WHERE id > $1', [0]);
        const { rows } = await sql.query<{ statement: string }>(
          'SELECT statement FROM pg_prepared_statements',
        );
        return rows.map((row) => row.statement);
      });

    expect(await preparedIn(pool, database.url)).toEqual([INSERT_NOTE]);

    const offUrl = `${database.url}${database.url.includes('?') ? '&' : '?'}prepared_statements=off`;
    expect(preparesStatements(offUrl)).toBe(false);
    const off = createPool(offUrl, 1);
    try {
      expect(await preparedIn(off, offUrl)).toEqual([]);
    } finally {
      await off.end();
    }
  });

  it('plans the statements anew each time the ledger rows added through the pool double', async () => {
    const onePool = createPool(database.url, 1);
    const namesAfter = async (grown: number): Promise<string[]> => {
      ledgerGrew(onePool, grown);
      return transaction(onePool, database.url, OPTIONS, async (sql) => {
        await sql.query(INSERT_NOTE, [Math.floor(Math.random() * 1e9), 'x']);
        const { rows } = await sql.query<{ name: string }>(
          'SELECT name FROM pg_prepared_statements ORDER BY prepare_time, name',
        );
        return rows.map((row) => row.name);
      });
    };
    try {
      const first = await namesAfter(0);
      expect(first).toHaveLength(1);
      // 63 rows: still the same plan. 64: a new generation, a new name (the old one stays).
      expect(await namesAfter(63)).toEqual(first);
      const second = await namesAfter(1);
      expect(second).toHaveLength(2);
      expect(await namesAfter(60)).toEqual(second);
      // 128 in all: the next one.
      expect(await namesAfter(4)).toHaveLength(3);
    } finally {
      await onePool.end();
    }
  });

  it('reads prepared_statements from the URL: off, false, 0 and no turn it off', () => {
    const base = 'postgres://user:secret@127.0.0.1:5432/newsletter';
    expect(preparesStatements(base)).toBe(true);
    expect(preparesStatements(`${base}?prepared_statements=on`)).toBe(true);
    for (const value of ['off', 'false', '0', 'no', 'OFF'])
      expect(preparesStatements(`${base}?sslmode=disable&prepared_statements=${value}`)).toBe(false);
  });
});
