/**
 * Suppressions and bounces on SQLite: addresses that are never mailed again, and the bounces
 * that put them there (the rules: src/domain/bounce.ts).
 */
import { bounceSuppressionReason, bounceSuppresses } from '../../domain/bounce.js';
import type { Millis } from '../../domain/types.js';
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
  const { now, softLimit } = options;
  return c.immediate((): BounceResult => {
    const inserted = c
      .sql(
        `INSERT OR IGNORE INTO bounce_events (dsn_id, address, kind, status, reason, at)
           VALUES (?, ?, ?, ?, ?, ?)`,
      )
      .run(event.dsnId, event.address, event.kind, event.status, event.reason, now).changes;
    if (inserted === 0) return { recorded: false, suppressed: false, softCount: 0 };
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
    if (!bounceSuppresses(event.kind, softCount, softLimit))
      return { recorded: true, suppressed: false, softCount };
    const reason = bounceSuppressionReason(event, softCount);
    const suppressed = c.sql(SUPPRESS).run(event.address, reason, 'bounce', now).changes === 1;
    return { recorded: true, suppressed, softCount };
  });
}
