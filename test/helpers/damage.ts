/**
 * Writes straight into a test database, past the Store, to build the states that older versions
 * (or a person with a SQL prompt) could leave behind and the current code never does: a run
 * closed while its rows stay `claimed`, a `retry` row of a cancelled newsletter. The tests then
 * prove that `status`, `doctor` and `reconcile` still see and settle them.
 *
 * One statement, `?` placeholders (numbered for PostgreSQL here), on its own connection.
 */
import Database from 'better-sqlite3';
import pg from 'pg';

export interface DamageTarget {
  kind: 'sqlite' | 'postgres';
  /** A SQLite file path, or a PostgreSQL URL (StoreHandle.location). */
  location: string;
}

export async function damage(target: DamageTarget, text: string, params: unknown[] = []): Promise<number> {
  if (target.kind === 'sqlite') {
    const db = new Database(target.location, { fileMustExist: true, timeout: 5000 });
    try {
      return db.prepare(text).run(...params).changes;
    } finally {
      db.close();
    }
  }
  let n = 0;
  const numbered = text.replace(/\?/g, () => `$${++n}`);
  const client = new pg.Client({ connectionString: target.location });
  await client.connect();
  try {
    return (await client.query(numbered, params)).rowCount ?? 0;
  } finally {
    await client.end();
  }
}

/** Closes a run the way older error paths did: `ended_at` set, its `claimed` rows left as they were. */
export function closeRunLeavingClaims(target: DamageTarget, runId: number, at: number): Promise<number> {
  return damage(target, "UPDATE runs SET ended_at = ?, outcome = 'error' WHERE id = ?", [at, runId]);
}

/** Puts rows back in `retry`, due at `at`, whatever the newsletter's status. */
export function forceRetry(target: DamageTarget, deliveryIds: number[], at: number): Promise<number> {
  const marks = deliveryIds.map(() => '?').join(', ');
  return damage(
    target,
    `UPDATE deliveries SET state = 'retry', next_attempt_at = ?, reason = NULL WHERE id IN (${marks})`,
    [at, ...deliveryIds],
  );
}
