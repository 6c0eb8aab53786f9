/**
 * The SQLite staging area of an import (the steps are in src/store/staged-import.ts).
 *
 * Staging: a TEMP table of the importing connection. It lives in that connection's private temp
 * database (a file SQLite opens once the table outgrows its cache, in SQLITE_TMPDIR, else /var/tmp
 * or /tmp, and unlinks at once), so writing to it takes no lock on the newsletter database at
 * all: send-due's claims and outcome writes and `serve`'s unsubscribes go on while the CSV streams
 * in. It disappears with the connection, so an import killed halfway leaves nothing behind, and
 * nothing anyone could publish.
 * (A real table would take the write lock for every batch, grow the database and its WAL, and
 * need cleaning after a crash.)
 *
 * Publishing: one BEGIN IMMEDIATE transaction of four set-based statements, the only time the
 * import holds the write lock: measured on a shared 2-core machine, 0.25 to 0.5 s for 100,000
 * rows and about 2.5 s for a million, under the 5 s default busy timeout; a writer that arrives
 * meanwhile waits, it does not fail.
 */
import type Database from 'better-sqlite3';
import type { Millis } from '../../domain/types.js';
import type { StagedRow, StagingArea } from '../staged-import.js';
import type { ImportSummary, ImportTarget } from '../store.js';

/** Rows per staging transaction: each commit of the temp database costs little, and stays short. */
export const SQLITE_STAGE_BATCH = 2000;

export class SqliteStagingArea implements StagingArea {
  private readonly db: Database.Database;
  private readonly target: ImportTarget;
  private readonly insert: Database.Statement;

  constructor(db: Database.Database, target: ImportTarget) {
    this.db = db;
    this.target = target;
    // On disk, whatever the build's default: a million staged rows must not live in this process.
    db.pragma('temp_store = FILE');
    // A small page cache for the temp database: the publish reads it once, in order, and this
    // process already holds the main database's cache (docs/benchmarks.md: a million-row import
    // must stay under 200 MB).
    db.pragma('temp.cache_size = -2000');
    db.exec('DROP TABLE IF EXISTS temp.import_staging');
    // seq is the rowid: the publish reads the rows in stream order without sorting them.
    db.exec(`CREATE TEMP TABLE import_staging (
      seq         INTEGER PRIMARY KEY,
      address     TEXT NOT NULL UNIQUE,
      email       TEXT NOT NULL,
      name        TEXT NOT NULL,
      fields      TEXT NOT NULL,
      occurrences INTEGER NOT NULL,
      lists       TEXT NOT NULL DEFAULT '[]'
    )`);
    // A repeat of an address merges as the one-transaction import did: last email and name win,
    // fields merged, new over old; its seq (where it first appeared) stays.
    this.insert = db.prepare(
      `INSERT INTO temp.import_staging (seq, address, email, name, fields, occurrences, lists)
       VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (address) DO UPDATE SET email = excluded.email, name = excluded.name,
         fields = json_patch(import_staging.fields, excluded.fields),
         occurrences = import_staging.occurrences + excluded.occurrences,
         lists = (SELECT json_group_array(value) FROM (SELECT value FROM json_each(import_staging.lists)
                  UNION SELECT value FROM json_each(excluded.lists)))`,
    );
  }

  async stage(batch: readonly StagedRow[]): Promise<void> {
    // A deferred transaction that touches only the temp database: no lock on the main file.
    this.db.transaction(() => {
      for (const row of batch) {
        this.insert.run(
          row.seq,
          row.address,
          row.email,
          row.name,
          JSON.stringify(row.fields),
          row.occurrences,
          JSON.stringify(row.lists ?? []),
        );
      }
    })();
  }

  async publish(occurrences: number): Promise<ImportSummary> {
    const { list, fieldNames, now } = this.target;
    return this.db
      .transaction((): ImportSummary => {
        // Inside a synchronous transaction: a hook can stop the process here (SIGSTOP), not wait.
        void this.target.at?.('import-publishing');
        // Counted inside the transaction, before the upsert: exact whatever others did meanwhile.
        const counts = this.db
          .prepare(
            `SELECT coalesce(sum(occurrences), 0) AS staged,
                    coalesce(sum(NOT EXISTS (SELECT 1 FROM main.subscribers s WHERE s.address = st.address)), 0) AS fresh
             FROM temp.import_staging st`,
          )
          .get() as { staged: number; fresh: number };
        if (counts.staged !== occurrences) {
          throw new Error(
            `the import staged ${occurrences} rows but ${counts.staged} are there; nothing was imported`,
          );
        }
        const addField = this.db.prepare('INSERT OR IGNORE INTO main.field_names (name) VALUES (?)');
        for (const name of fieldNames) addField.run(name);
        // `WHERE true` keeps SQLite from reading ON CONFLICT as a join's ON. `status` is not
        // touched: an import never re-subscribes someone who left.
        this.db
          .prepare(
            `INSERT INTO main.subscribers (email, address, name, fields, created_at, updated_at)
             SELECT email, address, name, fields, :now, :now FROM temp.import_staging WHERE true ORDER BY seq
             ON CONFLICT (address) DO UPDATE SET email = excluded.email, name = excluded.name,
               fields = json_patch(subscribers.fields, excluded.fields), updated_at = excluded.updated_at`,
          )
          .run({ now });
        // Counted before any membership changes: who stays out is who had opted out before.
        const stayedOut = this.target.sync && list !== null ? this.stayingOut(list) : undefined;
        const addedToList = list === null ? 0 : this.addMemberships(list, now);
        if (this.target.rowLists) this.addRowLists(now);
        const summary: ImportSummary = {
          created: counts.fresh,
          updated: counts.staged - counts.fresh,
          addedToList,
        };
        if (this.target.sync && list !== null) {
          summary.leftList = this.leaveList(list);
          summary.stayedOut = stayedOut ?? 0;
        }
        return summary;
      })
      .immediate();
  }

  async preview(occurrences: number): Promise<ImportSummary> {
    const { list } = this.target;
    // A read transaction: one snapshot of the database, no lock taken, nothing written.
    return this.db
      .transaction((): ImportSummary => {
        const counts = this.db
          .prepare(
            `SELECT coalesce(sum(occurrences), 0) AS staged,
                    coalesce(sum(NOT EXISTS (SELECT 1 FROM main.subscribers s WHERE s.address = st.address)), 0) AS fresh
             FROM temp.import_staging st`,
          )
          .get() as { staged: number; fresh: number };
        if (counts.staged !== occurrences) {
          throw new Error(`the import staged ${occurrences} rows but ${counts.staged} are there`);
        }
        const summary: ImportSummary = {
          created: counts.fresh,
          updated: counts.staged - counts.fresh,
          addedToList: 0,
        };
        if (list === null) return summary;
        summary.addedToList = (
          this.db
            .prepare(
              `SELECT count(*) AS n FROM temp.import_staging st
               WHERE NOT EXISTS (SELECT 1 FROM main.subscribers s JOIN main.memberships m ON m.subscriber_id = s.id
                                 JOIN main.lists l ON l.id = m.list_id WHERE s.address = st.address AND l.name = ?)`,
            )
            .get(list) as { n: number }
        ).n;
        summary.leftList = this.target.sync
          ? (
              this.db
                .prepare(
                  `SELECT count(*) AS n FROM main.memberships m JOIN main.lists l ON l.id = m.list_id
                   JOIN main.subscribers s ON s.id = m.subscriber_id
                   WHERE l.name = ? AND NOT EXISTS (SELECT 1 FROM temp.import_staging st WHERE st.address = s.address)`,
                )
                .get(list) as { n: number }
            ).n
          : 0;
        summary.stayedOut = this.stayingOut(list);
        return summary;
      })
      .deferred();
  }

  async discard(): Promise<void> {
    this.db.exec('DROP TABLE IF EXISTS temp.import_staging');
  }

  /** Staged addresses that opted out of `list` or of all mail, or are suppressed. */
  private stayingOut(list: string): number {
    return (
      this.db
        .prepare(
          `SELECT count(*) AS n FROM temp.import_staging st
           WHERE EXISTS (SELECT 1 FROM main.subscribers s WHERE s.address = st.address AND s.status = 'unsubscribed')
              OR EXISTS (SELECT 1 FROM main.suppressions sup WHERE sup.address = st.address)
              OR EXISTS (SELECT 1 FROM main.list_opt_outs o WHERE o.list_name = ? AND o.address = st.address)`,
        )
        .get(list) as { n: number }
    ).n;
  }

  /** --sync: the members of `list` whose address was not staged leave it (they stay subscribers). */
  private leaveList(list: string): number {
    return this.db
      .prepare(
        `DELETE FROM main.memberships
         WHERE list_id = (SELECT id FROM main.lists WHERE name = ?)
           AND NOT EXISTS (SELECT 1 FROM main.subscribers s JOIN temp.import_staging st ON st.address = s.address
                           WHERE s.id = memberships.subscriber_id)`,
      )
      .run(list).changes;
  }

  /** The lists each row names (a `lists` column), created if needed. */
  private addRowLists(now: Millis): void {
    this.db
      .prepare(
        `INSERT OR IGNORE INTO main.lists (name, created_at)
         SELECT DISTINCT j.value, ? FROM temp.import_staging st, json_each(st.lists) j`,
      )
      .run(now);
    this.db
      .prepare(
        `INSERT OR IGNORE INTO main.memberships (list_id, subscriber_id, created_at)
         SELECT l.id, s.id, ? FROM temp.import_staging st, json_each(st.lists) j
           JOIN main.lists l ON l.name = j.value JOIN main.subscribers s ON s.address = st.address
         ORDER BY st.seq`,
      )
      .run(now);
  }

  private addMemberships(list: string, now: Millis): number {
    this.db.prepare('INSERT OR IGNORE INTO main.lists (name, created_at) VALUES (?, ?)').run(list, now);
    const { id } = this.db.prepare('SELECT id FROM main.lists WHERE name = ?').get(list) as { id: number };
    return this.db
      .prepare(
        `INSERT OR IGNORE INTO main.memberships (list_id, subscriber_id, created_at)
         SELECT :list, s.id, :now FROM temp.import_staging st JOIN main.subscribers s ON s.address = st.address
         ORDER BY st.seq`,
      )
      .run({ list: id, now }).changes;
  }
}
