/**
 * Suppressions and bounces on SQLite: addresses that are never mailed again, and the bounces
 * that put them there (the rules: src/domain/bounce.ts).
 */
import { type BounceKind, bounceSuppressionReason, bounceSuppresses } from '../../domain/bounce.js';
import type { Millis } from '../../domain/types.js';
import { reportSource } from '../report-store.js';
import { type SuppressionRow, toSuppression } from '../rows.js';
import type { BounceEvent, BounceResult, Suppression } from '../store.js';
import type { SqliteDb } from './db.js';

/** An address already suppressed keeps its first reason. */
const SUPPRESS =
  'INSERT OR IGNORE INTO suppressions (address, reason, source, created_at) VALUES (?, ?, ?, ?)';

export function suppress(c: SqliteDb, address: string, reason: string, source: string, now: Millis): void {
  c.sql(SUPPRESS).run(address, reason, source, now);
}

export function suppressMany(
  c: SqliteDb,
  entries: readonly { address: string; reason: string }[],
  source: string,
  now: Millis,
): { added: number } {
  return c.immediate(() => {
    const insert = c.sql(SUPPRESS);
    let added = 0;
    for (const entry of entries) added += insert.run(entry.address, entry.reason, source, now).changes;
    return { added };
  });
}

export function unsuppress(c: SqliteDb, address: string, now: Millis): boolean {
  return c.immediate(() => {
    c.sql(
      "UPDATE bounce_events SET cleared_at = ? WHERE address = ? AND kind = 'soft' AND cleared_at IS NULL",
    ).run(now, address);
    return c.sql('DELETE FROM suppressions WHERE address = ?').run(address).changes === 1;
  });
}

export function listSuppressions(
  c: SqliteDb,
  filter: { afterAddress: string | null; limit: number },
): Suppression[] {
  // SQLite compares TEXT as bytes (BINARY), the order PostgreSQL gives with COLLATE "C".
  const found = c
    .sql(
      'SELECT address, reason, source, created_at, report_id FROM suppressions WHERE address > ? ORDER BY address LIMIT ?',
    )
    .all(filter.afterAddress ?? '', filter.limit) as SuppressionRow[];
  return found.map(toSuppression);
}

export function recordBounce(
  c: SqliteDb,
  event: BounceEvent,
  options: { softLimit: number; now: Millis },
): BounceResult {
  return c.immediate((): BounceResult => {
    const inserted = c
      .sql(
        `INSERT OR IGNORE INTO bounce_events (dsn_id, address, kind, status, reason, at)
           VALUES (?, ?, ?, ?, ?, ?)`,
      )
      .run(event.dsnId, event.address, event.kind, event.status, event.reason, options.now).changes;
    if (inserted === 0) return { recorded: false, suppressed: false, softCount: 0 };
    return suppressAfterEvent(c, event, null, options);
  });
}

/**
 * What follows a new bounce event, for a bounce from the mailbox (recordBounce) and an
 * authenticated report (reports.ts) alike, inside the caller's transaction: the address's soft
 * bounces that still count, and its suppression when the rule says so (src/domain/bounce.ts).
 * A complaint always suppresses, with its own reason; `reportId` is null for a mailbox bounce.
 */
export function suppressAfterEvent(
  c: SqliteDb,
  event: { address: string; kind: BounceKind | 'complaint'; status: string; reason: string },
  reportId: string | null,
  options: { softLimit: number; now: Millis },
): BounceResult {
  const { now, softLimit } = options;
  const softCount =
    event.kind === 'soft'
      ? (
          c
            .sql(
              "SELECT count(*) AS n FROM bounce_events WHERE address = ? AND kind = 'soft' AND cleared_at IS NULL",
            )
            .get(event.address) as { n: number }
        ).n
      : 0;
  if (event.kind === 'complaint') return suppressFor(event.reason);
  if (!bounceSuppresses(event.kind, softCount, softLimit))
    return { recorded: true, suppressed: false, softCount };
  return suppressFor(
    bounceSuppressionReason({ kind: event.kind, status: event.status, reason: event.reason }, softCount),
  );

  function suppressFor(reason: string): BounceResult {
    const suppressed =
      c
        .sql(
          'INSERT OR IGNORE INTO suppressions (address, reason, source, created_at, report_id) VALUES (?, ?, ?, ?, ?)',
        )
        .run(event.address, reason, reportSource(event.kind), now, reportId).changes === 1;
    return { recorded: true, suppressed, softCount };
  }
}
