/**
 * Who a newsletter goes to on SQLite, and how many are left: its audience (the union of its lists),
 * the recipients still pending (in the audience, no ledger row yet, audience not closed), the
 * counts that add up to it, and what the build and the dry run read.
 */
import { audienceClosed } from '../../domain/audience.js';
import { deliveryCounts } from '../../domain/ledger.js';
import { skipReason } from '../../domain/ledger-reasons.js';
import { storedCounts } from '../../domain/prune.js';
import { type Segment, segmentFromColumn } from '../../domain/segment.js';
import type { DeliveryCounts, DeliveryState, PendingRecipient } from '../../domain/types.js';
import { inAudience, notOptedOut } from '../conditions.js';
import { type CandidateRow, SELECT_CANDIDATES } from '../rows.js';
import { andInSegment, sqliteBinder } from '../segment-sql.js';
import type { SqliteDb } from './db.js';
import { rows } from './selects.js';

export function knownFieldNames(c: SqliteDb): string[] {
  return (c.sql('SELECT name FROM field_names ORDER BY name').all() as { name: string }[]).map((r) => r.name);
}

export function audienceSize(c: SqliteDb, lists: string[], segment: Segment | null = null): number {
  if (lists.length === 0) return 0;
  const params: Record<string, unknown> = { lists: JSON.stringify(lists) };
  const row = c
    .sql(
      `SELECT count(DISTINCT m.subscriber_id) AS n FROM memberships m JOIN lists l ON l.id = m.list_id
         JOIN subscribers s ON s.id = m.subscriber_id
         WHERE l.name IN (SELECT value FROM json_each(:lists)) AND ${notOptedOut('l.name', 's.address')}${andInSegment('sqlite', segment, 's', sqliteBinder(params))}`,
    )
    .get(params) as { n: number };
  return row.n;
}

/**
 * One read transaction, so one snapshot: the states and the pending count add up to the audience.
 * A pruned newsletter has no rows left to count: its counts are the ones kept when it was pruned.
 */
export function counts(c: SqliteDb, newsletterId: number): DeliveryCounts {
  return c.deferred(() => prunedCounts(c, newsletterId) ?? ledgerCounts(c, newsletterId));
}

function prunedCounts(c: SqliteDb, newsletterId: number): DeliveryCounts | null {
  const row = c.sql('SELECT pruned_counts FROM newsletters WHERE id = ?').get(newsletterId) as
    | { pruned_counts: string | null }
    | undefined;
  return storedCounts(row?.pruned_counts ?? null);
}

/** The counts from the rows themselves; the caller holds the transaction. */
export function ledgerCounts(c: SqliteDb, newsletterId: number): DeliveryCounts {
  const states = c
    .sql('SELECT state, count(*) AS n FROM deliveries WHERE newsletter_id = ? GROUP BY state')
    .all(newsletterId) as { state: DeliveryState; n: number }[];
  return deliveryCounts(
    states.map((row) => [row.state, row.n] as const),
    pendingCount(c, newsletterId),
  );
}

/** Recipients in the audience with no ledger row yet; 0 once the audience is closed. */
export function pendingCount(c: SqliteDb, newsletterId: number): number {
  const newsletter = c
    .sql('SELECT status, finished_at, segment FROM newsletters WHERE id = ?')
    .get(newsletterId) as { status: string; finished_at: number | null; segment: string | null } | undefined;
  if (!newsletter || audienceClosed({ status: newsletter.status, finishedAt: newsletter.finished_at }))
    return 0;
  // The segment as the claim applies it (claim.ts): who is outside it is not pending.
  const params: Record<string, unknown> = { nl: newsletterId };
  const segment = andInSegment('sqlite', segmentFromColumn(newsletter.segment), 's', sqliteBinder(params));
  const row = c
    .sql(
      `SELECT count(*) AS n FROM subscribers s WHERE ${inAudience(':nl')}${segment}
           AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.newsletter_id = :nl AND d.address = s.address)`,
    )
    .get(params) as { n: number };
  return row.n;
}

export function pendingRecipients(
  c: SqliteDb,
  newsletterId: number | null,
  lists: string[],
  afterSubscriberId: number,
  limit: number,
  segment: Segment | null = null,
): PendingRecipient[] {
  const params: Record<string, unknown> = {
    after: afterSubscriberId,
    lists: JSON.stringify(lists),
    nl: newsletterId ?? -1,
    limit,
  };
  const inSegment = andInSegment('sqlite', segment, 's', sqliteBinder(params));
  const found = c
    .sql(
      `${SELECT_CANDIDATES}
       WHERE s.id > :after
           AND EXISTS (SELECT 1 FROM memberships m JOIN lists l ON l.id = m.list_id
                       WHERE m.subscriber_id = s.id AND l.name IN (SELECT value FROM json_each(:lists))
                         AND ${notOptedOut('l.name', 's.address')})
           AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.newsletter_id = :nl AND d.address = s.address)${inSegment}
         ORDER BY s.id LIMIT :limit`,
    )
    .all(params) as CandidateRow[];
  return found.map((row) => rows.toPending(newsletterId ?? 0, row, skipReason(row)));
}
