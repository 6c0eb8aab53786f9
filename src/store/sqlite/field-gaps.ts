/**
 * The audience check's numbers on SQLite (src/domain/audience-fields.ts): of the recipients a
 * newsletter to `audience` would mail (on one of its lists and not opted out of it, within the
 * segment, active and not suppressed), how many there are and, per field, how many have it empty
 * or absent. One statement, one pass over the audience whatever the number of fields.
 */
import type { FieldGaps } from '../../domain/audience-fields.js';
import type { Audience } from '../../domain/segment.js';
import { notOptedOut, reachable } from '../conditions.js';
import { andInSegment, fieldValueSql, sqliteBinder } from '../segment-sql.js';
import type { SqliteDb } from './db.js';

export function fieldGaps(c: SqliteDb, audience: Audience, fields: readonly string[]): FieldGaps {
  if (audience.lists.length === 0) return { recipients: 0, empty: [] };
  const params: Record<string, unknown> = { lists: JSON.stringify(audience.lists) };
  const bind = sqliteBinder(params, 'field');
  // Column names g0, g1… are ours; the field names go in as parameters.
  const gaps = fields.map(
    (field, i) =>
      `, COALESCE(sum(CASE WHEN trim(${fieldValueSql('sqlite', 's', field, bind)}) = '' THEN 1 ELSE 0 END), 0) AS g${i}`,
  );
  const row = c
    .sql(
      `SELECT count(*) AS n${gaps.join('')} FROM subscribers s
         WHERE EXISTS (SELECT 1 FROM memberships m JOIN lists l ON l.id = m.list_id
                       WHERE m.subscriber_id = s.id AND l.name IN (SELECT value FROM json_each(:lists))
                         AND ${notOptedOut('l.name', 's.address')})
           AND ${reachable('s')}${andInSegment('sqlite', audience.segment, 's', sqliteBinder(params))}`,
    )
    .get(params) as Record<string, number>;
  return {
    recipients: row.n ?? 0,
    empty: fields.map((field, i) => ({ field, count: row[`g${i}`] ?? 0 })),
  };
}
