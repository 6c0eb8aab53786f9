/**
 * The PostgreSQL staging area of an import (the steps are in src/store/staged-import.ts).
 *
 * Staging: rows of `import_staging` under this import's random id (migrations/postgres/004). Not
 * a TEMP table: a temporary table is session state, and a transaction-mode pooler (pgbouncer) may
 * give every transaction another server connection (connection.ts). Each batch is one short
 * transaction that also touches the import's `staged_imports` row; nobody else reads these rows.
 *
 * Leftovers: only the process that staged the rows knows their id, so a killed import's rows are
 * never published; the next import on any host removes staged imports untouched for STALE_AFTER
 * (measured on the database's clock). Both tables are UNLOGGED (nothing to replay, a crash of the
 * server empties them), so the publish first checks that exactly the rows this process staged are
 * there, and refuses rather than publish part of a file.
 *
 * Publishing: one transaction with set-based statements. The subscribers' rows it upserts stay
 * locked until it commits: an unsubscribe of one of them waits that long, then applies (the import
 * never touches `status`); a claim skips them for that moment (claim.ts, SKIP LOCKED).
 */
import { randomUUID } from 'node:crypto';
import { DatabaseError } from '../../domain/errors.js';
import type { StagedRow, StagingArea } from '../staged-import.js';
import type { ImportSummary, ImportTarget } from '../store.js';
import type { Sql } from './connection.js';
import { addFieldNames, ensureList } from './lists-and-fields.js';

/** Rows per staging statement (and transaction). */
export const POSTGRES_STAGE_BATCH = 1000;

/**
 * How long a staged import may go without a new batch before the next import removes it as
 * abandoned. A live import stages a batch every few milliseconds; an hour is far beyond any pause.
 */
const STALE_AFTER = '1 hour';

/** Runs `fn` in one transaction of the store (PgDb.tx, db.ts). */
export type InTransaction = <T>(fn: (sql: Sql) => Promise<T>) => Promise<T>;

export class PostgresStagingArea implements StagingArea {
  private readonly id = randomUUID();
  private readonly tx: InTransaction;
  private readonly target: ImportTarget;
  /** Whether this import's `staged_imports` row exists (it is made with the first batch). */
  private registered = false;

  constructor(tx: InTransaction, target: ImportTarget) {
    this.tx = tx;
    this.target = target;
  }

  async stage(batch: readonly StagedRow[]): Promise<void> {
    if (!this.registered) await this.register();
    await this.tx(async (sql) => {
      // Touched first: if a stale-import sweep removed this import meanwhile, stop at once.
      const touched = await sql.query('UPDATE staged_imports SET touched_at = now() WHERE id = $1', [
        this.id,
      ]);
      if (touched.rowCount !== 1) throw abandoned();
      // No address twice in a batch (stagingBatches merged them): ON CONFLICT may update a row once.
      await sql.query(
        `INSERT INTO import_staging AS st (import_id, seq, address, email, name, fields, occurrences, lists)
         SELECT $1, u.seq, u.address, u.email, u.name, u.fields::jsonb, u.occurrences,
                ARRAY(SELECT jsonb_array_elements_text(u.lists::jsonb))
         FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::integer[], $8::text[])
           AS u(seq, address, email, name, fields, occurrences, lists)
         ON CONFLICT (import_id, address) DO UPDATE SET email = excluded.email, name = excluded.name,
           fields = st.fields || excluded.fields, occurrences = st.occurrences + excluded.occurrences,
           lists = ARRAY(SELECT DISTINCT unnest(st.lists || excluded.lists))`,
        [
          this.id,
          batch.map((row) => row.seq),
          batch.map((row) => row.address),
          batch.map((row) => row.email),
          batch.map((row) => row.name),
          batch.map((row) => JSON.stringify(row.fields)),
          batch.map((row) => row.occurrences),
          batch.map((row) => JSON.stringify(row.lists ?? [])),
        ],
      );
    });
  }

  async publish(occurrences: number): Promise<ImportSummary> {
    const { list, fieldNames, now } = this.target;
    return this.tx(async (sql) => {
      await this.target.at?.('import-publishing');
      const staged = this.registered ? await this.lockStaged(sql) : 0;
      if (staged !== occurrences) throw abandoned();
      await addFieldNames(sql, fieldNames);
      // `status` is not touched: an import never re-subscribes someone who left. `xmax = 0` is
      // true exactly for the rows this statement inserted; they are counted here, not returned.
      const [upserted] = (
        await sql.query<{ created: number }>(
          `WITH upserted AS (
             INSERT INTO subscribers AS s (email, address, name, fields, created_at, updated_at)
             SELECT st.email, st.address, st.name, st.fields, $2, $2
             FROM import_staging st WHERE st.import_id = $1 ORDER BY st.seq
             ON CONFLICT (address) DO UPDATE
               SET email = excluded.email, name = excluded.name, fields = s.fields || excluded.fields,
                   updated_at = excluded.updated_at
             RETURNING (s.xmax = 0) AS created)
           SELECT count(*) FILTER (WHERE created) AS created FROM upserted`,
          [this.id, now],
        )
      ).rows;
      const created = upserted?.created ?? 0;
      // Counted before any membership changes: who stays out is who had opted out before.
      const stayedOut = this.target.sync && list !== null ? await this.stayingOut(sql, list) : 0;
      let addedToList = 0;
      if (list !== null) {
        const listId = await ensureList(sql, list, now);
        addedToList = (
          await sql.query(
            `INSERT INTO memberships (list_id, subscriber_id, created_at)
             SELECT $1, s.id, $3 FROM import_staging st JOIN subscribers s ON s.address = st.address
             WHERE st.import_id = $2 ORDER BY st.seq
             ON CONFLICT DO NOTHING`,
            [listId, this.id, now],
          )
        ).rowCount;
      }
      if (this.target.rowLists) await this.addRowLists(sql, now);
      const summary: ImportSummary = { created, updated: occurrences - created, addedToList };
      if (this.target.sync && list !== null) {
        // --sync: the members whose address was not staged leave the list (they stay subscribers).
        summary.leftList = (
          await sql.query(
            `DELETE FROM memberships m USING lists l
             WHERE l.id = m.list_id AND l.name = $1
               AND NOT EXISTS (SELECT 1 FROM subscribers s JOIN import_staging st ON st.address = s.address
                               WHERE st.import_id = $2 AND s.id = m.subscriber_id)`,
            [list, this.id],
          )
        ).rowCount;
        summary.stayedOut = stayedOut;
      }
      return summary;
    });
  }

  async preview(occurrences: number): Promise<ImportSummary> {
    const { list } = this.target;
    return this.tx(async (sql) => {
      const staged = this.registered ? await this.lockStaged(sql) : 0;
      if (staged !== occurrences) throw abandoned();
      const [fresh] = (
        await sql.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM import_staging st
           WHERE st.import_id = $1 AND NOT EXISTS (SELECT 1 FROM subscribers s WHERE s.address = st.address)`,
          [this.id],
        )
      ).rows;
      const created = fresh?.n ?? 0;
      const summary: ImportSummary = { created, updated: occurrences - created, addedToList: 0 };
      if (list === null) return summary;
      const [joining] = (
        await sql.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM import_staging st
           WHERE st.import_id = $1
             AND NOT EXISTS (SELECT 1 FROM subscribers s JOIN memberships m ON m.subscriber_id = s.id
                             JOIN lists l ON l.id = m.list_id WHERE s.address = st.address AND l.name = $2)`,
          [this.id, list],
        )
      ).rows;
      summary.addedToList = joining?.n ?? 0;
      summary.leftList = 0;
      if (this.target.sync) {
        const [leaving] = (
          await sql.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM memberships m JOIN lists l ON l.id = m.list_id
             JOIN subscribers s ON s.id = m.subscriber_id
             WHERE l.name = $2
               AND NOT EXISTS (SELECT 1 FROM import_staging st WHERE st.import_id = $1 AND st.address = s.address)`,
            [this.id, list],
          )
        ).rows;
        summary.leftList = leaving?.n ?? 0;
      }
      summary.stayedOut = await this.stayingOut(sql, list);
      return summary;
    });
  }

  /** Staged addresses that opted out of `list` or of all mail, or are suppressed. */
  private async stayingOut(sql: Sql, list: string): Promise<number> {
    const [row] = (
      await sql.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM import_staging st
         WHERE st.import_id = $1
           AND (EXISTS (SELECT 1 FROM subscribers s WHERE s.address = st.address AND s.status = 'unsubscribed')
                OR EXISTS (SELECT 1 FROM suppressions sup WHERE sup.address = st.address)
                OR EXISTS (SELECT 1 FROM list_opt_outs o WHERE o.list_name = $2 AND o.address = st.address))`,
        [this.id, list],
      )
    ).rows;
    return row?.n ?? 0;
  }

  /** The lists each row names (a `lists` column), created if needed. */
  private async addRowLists(sql: Sql, now: number): Promise<void> {
    await sql.query(
      `INSERT INTO lists (name, created_at)
       SELECT DISTINCT x.name, $2::bigint FROM import_staging st CROSS JOIN LATERAL unnest(st.lists) AS x(name)
       WHERE st.import_id = $1
       ON CONFLICT (name) DO NOTHING`,
      [this.id, now],
    );
    // A new statement, so a new snapshot: it sees lists another import created meanwhile.
    await sql.query(
      `INSERT INTO memberships (list_id, subscriber_id, created_at)
       SELECT l.id, s.id, $2::bigint FROM import_staging st CROSS JOIN LATERAL unnest(st.lists) AS x(name)
         JOIN lists l ON l.name = x.name JOIN subscribers s ON s.address = st.address
       WHERE st.import_id = $1 ORDER BY st.seq
       ON CONFLICT DO NOTHING`,
      [this.id, now],
    );
  }

  async discard(): Promise<void> {
    if (!this.registered) return;
    await this.tx((sql) => sql.query('DELETE FROM staged_imports WHERE id = $1', [this.id]));
    this.registered = false;
  }

  /** Registers this import, after removing the imports that were abandoned (killed, or lost). */
  private async register(): Promise<void> {
    await this.tx(async (sql) => {
      await sql.query(`DELETE FROM staged_imports WHERE touched_at < now() - interval '${STALE_AFTER}'`);
      await sql.query('INSERT INTO staged_imports (id) VALUES ($1)', [this.id]);
    });
    this.registered = true;
  }

  /**
   * Locks this import's row (a sweep that would remove it now waits for the publish) and counts
   * the rows staged under it; -1 when the row is gone.
   */
  private async lockStaged(sql: Sql): Promise<number> {
    const [row] = (
      await sql.query<{ staged: number | null }>(
        `SELECT (SELECT sum(occurrences) FROM import_staging WHERE import_id = i.id)::bigint AS staged
         FROM staged_imports i WHERE i.id = $1 FOR UPDATE`,
        [this.id],
      )
    ).rows;
    return row ? (row.staged ?? 0) : -1;
  }
}

function abandoned(): DatabaseError {
  return new DatabaseError('The rows this import had staged are no longer all there; nothing was imported.', [
    `The import paused for longer than ${STALE_AFTER} (another import removed its rows as abandoned), or the PostgreSQL server restarted meanwhile. Run the import again.`,
  ]);
}
