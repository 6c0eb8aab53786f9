/**
 * One SQLite connection as the store's files use it: statements prepared once, and the two kinds
 * of transaction. better-sqlite3 is synchronous, so a transaction is a plain function call that no
 * other call of this process can interleave with.
 */
import type Database from 'better-sqlite3';

export class SqliteDb {
  readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();

  constructor(db: Database.Database) {
    this.db = db;
  }

  /**
   * A statement prepared once per connection. Preparing costs more than running most of these
   * statements: the import runs some once per row (a million native statements for the garbage
   * collector, docs/benchmarks.md), the send path several per claim and per outcome write.
   */
  sql(text: string): Database.Statement {
    let statement = this.statements.get(text);
    if (!statement) {
      statement = this.db.prepare(text);
      this.statements.set(text, statement);
    }
    return statement;
  }

  /**
   * BEGIN IMMEDIATE: takes the database's single write lock before the first read, so that a
   * read-then-write can never be overtaken between the two (a second writer waits for the lock,
   * up to the busy timeout). Every read-then-write of the store runs in one.
   */
  immediate<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  /** A read transaction: one snapshot for several statements, no lock taken. */
  deferred<T>(fn: () => T): T {
    return this.db.transaction(fn).deferred();
  }
}
