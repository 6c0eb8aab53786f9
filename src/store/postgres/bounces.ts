/**
 * Suppressions and bounces on PostgreSQL: addresses that are never mailed again, and the bounces
 * that put them there (the rules: src/domain/bounce.ts).
 */
import { type BounceKind, bounceSuppressionReason, bounceSuppresses } from '../../domain/bounce.js';
import type { Millis } from '../../domain/types.js';
import { reportSource } from '../report-store.js';
import { type SuppressionRow, toSuppression } from '../rows.js';
import type { BounceEvent, BounceResult, Suppression } from '../store.js';
import type { Sql } from './connection.js';
import type { PgDb } from './db.js';

/** Rows per statement when importing a suppression list. */
const IMPORT_BATCH = 500;

export async function suppress(
  pg: PgDb,
  address: string,
  reason: string,
  source: string,
  now: Millis,
): Promise<void> {
  await pg.one(
    `INSERT INTO suppressions (address, reason, source, created_at) VALUES ($1, $2, $3, $4)
     ON CONFLICT (address) DO NOTHING`,
    [address, reason, source, now],
  );
}

export function suppressMany(
  pg: PgDb,
  entries: readonly { address: string; reason: string }[],
  source: string,
  now: Millis,
): Promise<{ added: number }> {
  return pg.tx(async (sql) => {
    let added = 0;
    for (let i = 0; i < entries.length; i += IMPORT_BATCH) {
      const batch = entries.slice(i, i + IMPORT_BATCH);
      // DISTINCT ON: the same address twice in one statement would be an error with ON CONFLICT.
      const result = await sql.query(
        `INSERT INTO suppressions (address, reason, source, created_at)
         SELECT DISTINCT ON (u.address) u.address, u.reason, $3, $4
         FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS u(address, reason, ord)
         ORDER BY u.address, u.ord
         ON CONFLICT (address) DO NOTHING`,
        [batch.map((e) => e.address), batch.map((e) => e.reason), source, now],
      );
      added += result.rowCount;
    }
    return { added };
  });
}

export function unsuppress(pg: PgDb, address: string, now: Millis): Promise<boolean> {
  return pg.tx(async (sql) => {
    await sql.query(
      "UPDATE bounce_events SET cleared_at = $2 WHERE address = $1 AND kind = 'soft' AND cleared_at IS NULL",
      [address, now],
    );
    return (await sql.query('DELETE FROM suppressions WHERE address = $1', [address])).rowCount === 1;
  });
}

export async function listSuppressions(
  pg: PgDb,
  filter: { afterAddress: string | null; limit: number },
): Promise<Suppression[]> {
  const found = await pg.rows<SuppressionRow>(
    `SELECT address, reason, source, created_at, report_id FROM suppressions
     WHERE address COLLATE "C" > $1 ORDER BY address COLLATE "C" LIMIT $2`,
    [filter.afterAddress ?? '', filter.limit],
  );
  return found.map(toSuppression);
}

export function recordBounce(
  pg: PgDb,
  event: BounceEvent,
  options: { softLimit: number; now: Millis },
): Promise<BounceResult> {
  return pg.tx(async (sql): Promise<BounceResult> => {
    await lockAddressBounces(sql, event.address);
    const inserted = await sql.query(
      `INSERT INTO bounce_events (dsn_id, address, kind, status, reason, at)
       VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (dsn_id, address) DO NOTHING`,
      [event.dsnId, event.address, event.kind, event.status, event.reason, options.now],
    );
    if (inserted.rowCount === 0) return { recorded: false, suppressed: false, softCount: 0 };
    return suppressAfterEvent(sql, event, null, options);
  });
}

/**
 * Taken before a bounce event is written, by recordBounce and an authenticated report
 * (reports.ts) alike: two hosts importing soft bounces of one address at once would each count
 * only its own uncommitted row and neither reach the limit, so one address's bounces are counted
 * in turn.
 */
export async function lockAddressBounces(sql: Sql, address: string): Promise<void> {
  await sql.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`bounce:${address}`]);
}

/**
 * What follows a new bounce event, for a bounce from the mailbox (recordBounce) and an
 * authenticated report (reports.ts) alike, inside the caller's transaction (after
 * lockAddressBounces): the address's soft bounces that still count, and its suppression when the
 * rule says so (src/domain/bounce.ts). A complaint always suppresses, with its own reason;
 * `reportId` is null for a mailbox bounce.
 */
export async function suppressAfterEvent(
  sql: Sql,
  event: { address: string; kind: BounceKind | 'complaint'; status: string; reason: string },
  reportId: string | null,
  options: { softLimit: number; now: Millis },
): Promise<BounceResult> {
  const { now, softLimit } = options;
  let softCount = 0;
  if (event.kind === 'soft') {
    const [row] = (
      await sql.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM bounce_events WHERE address = $1 AND kind = 'soft' AND cleared_at IS NULL",
        [event.address],
      )
    ).rows;
    softCount = row?.n ?? 0;
  }
  let reason: string;
  if (event.kind === 'complaint') reason = event.reason;
  else if (bounceSuppresses(event.kind, softCount, softLimit))
    reason = bounceSuppressionReason(
      { kind: event.kind, status: event.status, reason: event.reason },
      softCount,
    );
  else return { recorded: true, suppressed: false, softCount };
  const suppressed = await sql.query(
    `INSERT INTO suppressions (address, reason, source, created_at, report_id) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (address) DO NOTHING`,
    [event.address, reason, reportSource(event.kind), now, reportId],
  );
  return { recorded: true, suppressed: suppressed.rowCount === 1, softCount };
}
