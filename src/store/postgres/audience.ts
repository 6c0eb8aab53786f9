/**
 * Who a newsletter goes to on PostgreSQL, and how many are left: its audience (the union of its
 * lists), the recipients still pending (in the audience, no ledger row yet, audience not closed),
 * the counts that add up to it, and what the build and the dry run read. Each answer is one
 * statement, so one snapshot, even while other hosts claim.
 */
import { deliveryCounts } from '../../domain/ledger.js';
import { skipReason } from '../../domain/ledger-reasons.js';
import { storedCounts } from '../../domain/prune.js';
import { type Segment, segmentFromColumn } from '../../domain/segment.js';
import type { DeliveryCounts, DeliveryState, PendingRecipient } from '../../domain/types.js';
import { audienceClosedSql, inAudience, notOptedOut } from '../conditions.js';
import { type CandidateRow, SELECT_CANDIDATES } from '../rows.js';
import { andInSegment, pgBinder } from '../segment-sql.js';
import type { Sql } from './connection.js';
import type { PgDb } from './db.js';
import { rows } from './selects.js';

export async function knownFieldNames(pg: PgDb): Promise<string[]> {
  return (await pg.rows<{ name: string }>('SELECT name FROM field_names ORDER BY name COLLATE "C"')).map(
    (r) => r.name,
  );
}

export async function audienceSize(
  pg: PgDb,
  lists: string[],
  segment: Segment | null = null,
): Promise<number> {
  if (lists.length === 0) return 0;
  const params: unknown[] = [lists];
  const inSegment = andInSegment('postgres', segment, 's', pgBinder(params));
  const [row] = await pg.rows<{ n: number }>(
    `SELECT count(DISTINCT m.subscriber_id) AS n FROM memberships m JOIN lists l ON l.id = m.list_id
     JOIN subscribers s ON s.id = m.subscriber_id
     WHERE l.name = ANY($1::text[]) AND ${notOptedOut('l.name', 's.address')}${inSegment}`,
    params,
  );
  return row?.n ?? 0;
}

/**
 * One statement, so one snapshot: the states and the pending count add up to the audience even
 * while other hosts claim. `pending` is 0 once the audience is closed (or the newsletter does not
 * exist). A pruned newsletter has no rows left to count: its counts are the ones kept when it
 * was pruned. `inSegment` narrows the pending recipients as the claim does (claim.ts); the
 * segment is read just before by a statement of its own, which is safe because it changes only
 * while the newsletter has no ledger rows (a draft or a scheduled one).
 */
const countsSql = (inSegment: string) => `SELECT
   (SELECT pruned_counts FROM newsletters WHERE id = $1) AS pruned,
   (SELECT json_object_agg(state, n) FROM
      (SELECT state, count(*) AS n FROM deliveries WHERE newsletter_id = $1 GROUP BY state) x) AS states,
   CASE WHEN NOT EXISTS (SELECT 1 FROM newsletters n WHERE n.id = $1 AND NOT ${audienceClosedSql('n')}) THEN 0
        ELSE (SELECT count(*) FROM subscribers s WHERE ${inAudience('$1')}${inSegment}
                AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.newsletter_id = $1 AND d.address = s.address))
   END AS pending`;

/** The newsletter's segment condition on `s` with its parameters after $1 (the id), for `countsSql`. */
async function countsStatement(
  query: (text: string, params: unknown[]) => Promise<{ segment: unknown }[]>,
  newsletterId: number,
): Promise<{ text: string; params: unknown[] }> {
  const [row] = await query('SELECT segment FROM newsletters WHERE id = $1', [newsletterId]);
  const params: unknown[] = [newsletterId];
  const inSegment = andInSegment('postgres', segmentFromColumn(row?.segment ?? null), 's', pgBinder(params));
  return { text: countsSql(inSegment), params };
}

interface CountsRow {
  pruned: unknown;
  states: Record<DeliveryState, number> | null;
  pending: number;
}

export async function counts(pg: PgDb, newsletterId: number): Promise<DeliveryCounts> {
  const { text, params } = await countsStatement((t, p) => pg.rows<{ segment: unknown }>(t, p), newsletterId);
  const [row] = await pg.rows<CountsRow>(text, params);
  return storedCounts(row?.pruned ?? null) ?? fromRows(row);
}

/** The counts from the rows themselves, inside the caller's transaction (the prune's). */
export async function ledgerCounts(sql: Sql, newsletterId: number): Promise<DeliveryCounts> {
  const { text, params } = await countsStatement(
    async (t, p) => (await sql.query<{ segment: unknown }>(t, p)).rows,
    newsletterId,
  );
  const [row] = (await sql.query<CountsRow>(text, params)).rows;
  return fromRows(row);
}

function fromRows(row: CountsRow | undefined): DeliveryCounts {
  const states = Object.entries(row?.states ?? {}).map(
    ([state, n]) => [state as DeliveryState, Number(n)] as const,
  );
  return deliveryCounts(states, row?.pending ?? 0);
}

export async function pendingRecipients(
  pg: PgDb,
  newsletterId: number | null,
  lists: string[],
  afterSubscriberId: number,
  limit: number,
  segment: Segment | null = null,
): Promise<PendingRecipient[]> {
  const params: unknown[] = [afterSubscriberId, lists, newsletterId ?? -1, limit];
  const inSegment = andInSegment('postgres', segment, 's', pgBinder(params));
  const found = await pg.rows<CandidateRow>(
    `${SELECT_CANDIDATES}
     WHERE s.id > $1
       AND EXISTS (SELECT 1 FROM memberships m JOIN lists l ON l.id = m.list_id
                   WHERE m.subscriber_id = s.id AND l.name = ANY($2::text[])
                     AND ${notOptedOut('l.name', 's.address')})
       AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.newsletter_id = $3 AND d.address = s.address)${inSegment}
     ORDER BY s.id LIMIT $4`,
    params,
  );
  return found.map((row) => rows.toPending(newsletterId ?? 0, row, skipReason(row)));
}
