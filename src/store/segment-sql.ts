/**
 * A segment (src/domain/segment.ts) as an SQL condition on subscriber `s`, written once for both
 * dialects. Every value (a field name, a compared value, an excluded list) goes in as a bound
 * parameter through `bind`, never into the text: the text depends only on the segment's shape,
 * so a prepared statement is reused, and nothing a user typed can change the query. A newsletter
 * without a segment adds no condition at all: its claims and counts run exactly the queries they
 * ran before segments existed.
 *
 * The two dialects differ in how a field is read: SQLite keeps `fields` as JSON text
 * (json_extract with a `$."name"` path), PostgreSQL as jsonb (`->>` with the key). An absent
 * field reads as '' in both, which is the rule's "absent is empty".
 */
import type { Segment } from '../domain/segment.js';

export type Dialect = 'sqlite' | 'postgres';

/** Adds `value` to the statement's parameters and returns its placeholder. */
export type Bind = (value: string) => string;

/** Placeholders `:seg0`, `:seg1`… added to a better-sqlite3 named-parameter object. */
export function sqliteBinder(params: Record<string, unknown>, prefix = 'seg'): Bind {
  let n = 0;
  return (value) => {
    const name = `${prefix}${n++}`;
    params[name] = value;
    return `:${name}`;
  };
}

/**
 * Placeholders `$k::text` appended to a pg parameter array. Typed: `jsonb ->> $k` alone is
 * ambiguous to PostgreSQL (a key or an array index).
 */
export function pgBinder(params: unknown[]): Bind {
  return (value) => {
    params.push(value);
    return `$${params.length}::text`;
  };
}

/** Subscriber `s`'s value of `field` (`email`, `name`, or an imported field), '' when absent. */
export function fieldValueSql(dialect: Dialect, s: string, field: string, bind: Bind): string {
  // The ledger and a rule's email value are both the normalised address.
  if (field === 'email') return `${s}.address`;
  if (field === 'name') return `${s}.name`;
  return dialect === 'sqlite'
    ? `COALESCE(json_extract(${s}.fields, ${bind(`$."${field}"`)}), '')`
    : `COALESCE(${s}.fields ->> ${bind(field)}, '')`;
}

/**
 * The segment as a condition on `s`, to AND into a WHERE: '' for no segment (nothing to add),
 * else ` AND (…)` with every rule and the excluded lists.
 */
export function andInSegment(dialect: Dialect, segment: Segment | null, s: string, bind: Bind): string {
  if (segment === null) return '';
  const parts = segment.where.map(
    (rule) =>
      `${fieldValueSql(dialect, s, rule.field, bind)} ${rule.op === '=' ? '=' : '<>'} ${bind(rule.value)}`,
  );
  if (segment.excludeLists.length > 0) {
    const names = segment.excludeLists.map(bind).join(', ');
    parts.push(`NOT EXISTS (SELECT 1 FROM memberships xm JOIN lists xl ON xl.id = xm.list_id
                            WHERE xm.subscriber_id = ${s}.id AND xl.name IN (${names}))`);
  }
  return parts.length === 0 ? '' : ` AND (${parts.join(' AND ')})`;
}
