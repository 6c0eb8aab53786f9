/**
 * The two writes that every way of adding subscribers shares (addSubscriber, and an import's
 * publish: ./import-staging.ts), inside the caller's transaction.
 */
import type { Millis } from '../../domain/types.js';
import type { Sql } from './connection.js';

export async function ensureList(sql: Sql, name: string, now: Millis): Promise<number> {
  // Two statements on purpose: after ON CONFLICT DO NOTHING has waited for another import that
  // created the same list, only a new statement (a new snapshot) can see that row.
  await sql.query('INSERT INTO lists (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [
    name,
    now,
  ]);
  const [row] = (await sql.query<{ id: number }>('SELECT id FROM lists WHERE name = $1', [name])).rows;
  return row!.id;
}

export async function addFieldNames(sql: Sql, names: string[]): Promise<void> {
  if (names.length === 0) return;
  await sql.query('INSERT INTO field_names (name) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING', [names]);
}
