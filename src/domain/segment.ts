/**
 * Segments: the part of a newsletter's lists it goes to (`create --where city=Paris
 * --where plan!=free --exclude-list staff`). A newsletter's audience is the union of its lists,
 * minus the members of its excluded lists, narrowed to the subscribers for whom every rule holds.
 * The segment is stored with the newsletter (a JSON column, NULL for the whole lists) and applied
 * where recipients are claimed and in every count (src/store/segment-sql.ts), so that a person
 * outside the segment is not in the audience at all: no ledger row, not pending, not counted.
 *
 * The rule for one `FIELD=VALUE`: the subscriber's value of FIELD, an absent field read as '',
 * equals VALUE exactly (values are trimmed on import and here; case counts: "Paris" is not
 * "paris"). `FIELD!=VALUE` is its negation, so `city!=Paris` includes those without a city,
 * `city=` selects those without one and `city!=` those with one. FIELD is a field name as an
 * import names a column (src/import/csv-header.ts: `First Name`, `first_name` and `FIRST NAME`
 * are the same field); `email` and `name` are the subscriber's own columns.
 */
import { fieldNameOf } from '../import/csv-header.js';
import { normaliseAddress } from './address.js';
import { closestName } from './closest-name.js';

export type SegmentOperator = '=' | '!=';

export interface SegmentRule {
  /** A field name as stored (csv-header.ts's fieldNameOf), or `email` / `name`. */
  field: string;
  op: SegmentOperator;
  value: string;
}

export interface Segment {
  /** Every rule must hold (AND). */
  where: SegmentRule[];
  /** Members of these lists are left out, whatever other list they are on. */
  excludeLists: string[];
}

/** Who a newsletter goes to: its lists, narrowed by its segment (null: the whole lists). */
export interface Audience {
  lists: string[];
  segment: Segment | null;
}

/** The fields a rule may name besides the imported ones: the subscriber's own columns. */
export const SUBSCRIBER_COLUMNS = ['email', 'name'] as const;

export interface SegmentOptions {
  /** `--where` values as typed. */
  where?: readonly string[] | undefined;
  /** `--exclude-list` values as typed. */
  excludeLists?: readonly string[] | undefined;
}

export interface SegmentParse {
  /** Null when no option was given: the whole lists. */
  segment: Segment | null;
  /** One sentence per problem, each naming the fix; empty when the segment is good. */
  problems: string[];
}

/**
 * `--where` and `--exclude-list` checked against what exists: `fields` (every imported field
 * name) and `lists` (every list name); `sendLists` are the newsletter's own lists. Every problem
 * is reported, none thrown: the caller adds them to its own and refuses once (exit 4).
 */
export function parseSegment(
  options: SegmentOptions,
  known: { fields: readonly string[]; lists: readonly string[]; sendLists: readonly string[] },
): SegmentParse {
  const problems: string[] = [];
  const where: SegmentRule[] = [];
  const fieldNames = [...new Set([...SUBSCRIBER_COLUMNS, ...known.fields])].sort();
  for (const typed of options.where ?? []) {
    const rule = parseRule(typed);
    if (typeof rule === 'string') {
      problems.push(rule);
      continue;
    }
    if (!fieldNames.includes(rule.field)) {
      const near = closestName(rule.field, fieldNames);
      problems.push(
        `--where "${typed}": there is no field "${rule.field}"${near ? ` (did you mean "${near}"?)` : ''}; ` +
          `known fields: ${fieldNames.join(', ')}.`,
      );
      continue;
    }
    if (!where.some((r) => r.field === rule.field && r.op === rule.op && r.value === rule.value))
      where.push(rule);
  }
  const excludeLists: string[] = [];
  for (const list of options.excludeLists ?? []) {
    if (!known.lists.includes(list)) {
      problems.push(
        `--exclude-list "${list}": there is no list "${list}"; lists: ${[...known.lists].sort().join(', ') || '(none yet)'}.`,
      );
    } else if (known.sendLists.includes(list)) {
      problems.push(
        `--exclude-list "${list}" is also a --list: its members would be left out entirely; give it only once.`,
      );
    } else if (!excludeLists.includes(list)) {
      excludeLists.push(list);
    }
  }
  const given = (options.where?.length ?? 0) + (options.excludeLists?.length ?? 0) > 0;
  return { segment: given ? { where, excludeLists: excludeLists.sort() } : null, problems };
}

/** `FIELD=VALUE` or `FIELD!=VALUE` (the first `=` decides), or the problem in words. */
export function parseRule(typed: string): SegmentRule | string {
  const equals = typed.indexOf('=');
  if (equals === -1)
    return `--where "${typed}" has no "=": write FIELD=VALUE or FIELD!=VALUE, e.g. --where "city=Paris".`;
  const negated = equals > 0 && typed[equals - 1] === '!';
  const typedField = typed.slice(0, negated ? equals - 1 : equals).trim();
  const field = fieldNameOf(typedField);
  if (field === '')
    return `--where "${typed}" names no field before "${negated ? '!=' : '='}": write FIELD=VALUE, e.g. --where "city=Paris".`;
  let value = typed.slice(equals + 1).trim();
  // The ledger keys addresses in their normalised form (address.ts): compare with that.
  if (field === 'email' && value !== '') {
    const address = normaliseAddress(value);
    if (address.ok) value = address.address;
  }
  return { field, op: negated ? '!=' : '=', value };
}

/** The segment as `show` prints it: `city = "Paris" and plan != "free"; not on list staff`. */
export function describeSegment(segment: Segment | null): string {
  if (segment === null) return 'none (the whole lists)';
  const rules = segment.where.map((r) => `${r.field} ${r.op} ${JSON.stringify(r.value)}`).join(' and ');
  const excluded =
    segment.excludeLists.length === 0
      ? ''
      : `not on list${segment.excludeLists.length === 1 ? '' : 's'} ${segment.excludeLists.join(', ')}`;
  return [rules, excluded].filter((part) => part !== '').join('; ') || 'none (the whole lists)';
}

/**
 * The stored form, read back: a JSON column as SQLite (text) or PostgreSQL (parsed) returns it.
 * The column is only ever written by segmentToColumn, from parseSegment's result; a missing part
 * reads as empty (no rules, no excluded list).
 */
export function segmentFromColumn(value: unknown): Segment | null {
  const parsed = typeof value === 'string' ? (JSON.parse(value) as unknown) : value;
  if (parsed === null || typeof parsed !== 'object') return null;
  const { where, excludeLists } = parsed as Partial<Segment>;
  return {
    where: Array.isArray(where) ? where : [],
    excludeLists: Array.isArray(excludeLists) ? excludeLists : [],
  };
}

/** The value the column stores: null for none, so that "whole lists" is one spelling. */
export function segmentToColumn(segment: Segment | null): string | null {
  if (segment === null || (segment.where.length === 0 && segment.excludeLists.length === 0)) return null;
  return JSON.stringify({ where: segment.where, excludeLists: segment.excludeLists });
}
