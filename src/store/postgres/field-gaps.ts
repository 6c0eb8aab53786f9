/**
 * The audience check's numbers on PostgreSQL (src/domain/audience-fields.ts): of the recipients a
 * newsletter to `audience` would mail (on one of its lists and not opted out of it, within the
 * segment, active and not suppressed), how many there are and, per field, how many have it empty
 * or absent. One statement, one pass over the audience whatever the number of fields.
 */
import type { FieldGaps } from '../../domain/audience-fields.js';
import type { Audience } from '../../domain/segment.js';
import { notOptedOut, reachable } from '../conditions.js';
import { andInSegment, fieldValueSql, pgBinder } from '../segment-sql.js';
import type { PgDb } from './db.js';

export async function fieldGaps(pg: PgDb, audience: Audience, fields: readonly string[]): Promise<FieldGaps> {
  if (audience.lists.length === 0) return { recipients: 0, empty: [] };
  const params: unknown[] = [audience.lists];
  const bind = pgBinder(params);
  // Column names g0, g1… are ours; the field names go in as parameters.
  const gaps = fields.map(
    (field, i) =>
      `, count(*) FILTER (WHERE trim(${fieldValueSql('postgres', 's', field, bind)}) = '') AS g${i}`,
  );
  const [row] = await pg.rows<Record<string, number>>(
    `SELECT count(*) AS n${gaps.join('')} FROM subscribers s
       WHERE EXISTS (SELECT 1 FROM memberships m JOIN lists l ON l.id = m.list_id
                     WHERE m.subscriber_id = s.id AND l.name = ANY($1::text[])
                       AND ${notOptedOut('l.name', 's.address')})
         AND ${reachable('s')}${andInSegment('postgres', audience.segment, 's', bind)}`,
    params,
  );
  return {
    recipients: Number(row?.n ?? 0),
    empty: fields.map((field, i) => ({ field, count: Number(row?.[`g${i}`] ?? 0) })),
  };
}
