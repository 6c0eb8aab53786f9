/**
 * How both stores import a CSV without holding the database's write lock while the file streams
 * in. The old import kept one transaction open for the whole file (seconds for 100,000 rows), and
 * every claim, outcome write and one-click unsubscribe meanwhile waited, then failed with "busy".
 *
 * 1. **Stage**: the rows go, in batches, into a staging area that no other command reads (a TEMP
 *    table on SQLite, which takes no lock on the database file at all; an UNLOGGED table keyed by
 *    this import's id on PostgreSQL), each batch in its own short transaction.
 * 2. **Publish**: once the whole stream has been read without an error (an invalid row makes the
 *    CLI's stream throw at its end), one short transaction moves everything staged into the
 *    subscribers with set-based statements. This is the only moment the import holds the lock.
 * 3. **Discard** the staging area, on every path.
 *
 * "Nothing imported when any row is invalid" still holds: nothing is published before the stream
 * has ended cleanly, and the publish is one transaction. A killed import never publishes: only
 * the process that staged the rows knows where they are, and what it leaves is removed (SQLite's
 * TEMP table goes with its connection; PostgreSQL's staged rows by the next import, once stale).
 *
 * The semantics are those of the one-transaction import, row by row: a repeated address updates
 * what its first row created (email and name of the last row, fields merged, new over old); an
 * existing subscriber's fields are merged with the new ones; an import never re-subscribes
 * someone who left; new subscribers get their ids in file order.
 *
 * `--sync` (issue 14) happens in the same publish transaction: the list's members whose address
 * was not staged leave it. `--dry-run` stages the same way and counts instead of publishing.
 */
import type { FailpointHook } from '../engine/failpoints.js';
import type { ImportSummary, SubscriberInput } from './store.js';

/** One address's rows of an import, merged as the publish will merge them into the subscriber. */
export interface StagedRow {
  /** Where the address first appeared in the stream: new subscribers get their ids in this order. */
  seq: number;
  email: string;
  address: string;
  name: string;
  fields: Record<string, string>;
  /** How many rows of the stream had this address: every one but a new subscriber's first is an update. */
  occurrences: number;
  /** The lists its rows name (a `lists` column), every row's together; absent without one. */
  lists?: string[];
}

export interface StagingArea {
  /** Adds one batch (no address twice in it) in one short transaction. A staged address merges. */
  stage(batch: readonly StagedRow[]): Promise<void>;
  /**
   * Moves everything staged into the subscribers, the list and the field names in ONE short
   * transaction. `occurrences` is how many rows were staged: a staging area that lost some
   * (removed as stale, or an UNLOGGED table after a server crash) must refuse, not publish part.
   */
  publish(occurrences: number): Promise<ImportSummary>;
  /**
   * `--dry-run`: what `publish` would report (new, updated, joining, leaving with --sync, staying
   * out), counted from the staged rows; writes nothing outside the staging area.
   */
  preview(occurrences: number): Promise<ImportSummary>;
  /** Removes the staging area. Called on every path, after the publish or instead of it. */
  discard(): Promise<void>;
}

/**
 * Stages `rows` in batches of at most `batchSize` addresses, then publishes them, or nothing; with
 * `dryRun`, only counts what the publish would do.
 */
export async function importThroughStaging(
  rows: AsyncIterable<SubscriberInput>,
  area: StagingArea,
  batchSize: number,
  at?: FailpointHook,
  dryRun = false,
): Promise<ImportSummary> {
  let summary: ImportSummary;
  try {
    let staged = 0;
    for await (const batch of stagingBatches(rows, batchSize)) {
      await area.stage(batch);
      staged += batch.reduce((sum, row) => sum + row.occurrences, 0);
      await at?.('import-batch-staged');
    }
    await at?.('import-staged');
    summary = dryRun ? await area.preview(staged) : await area.publish(staged);
  } catch (error) {
    // The import failed; a staging area left behind would only be removed later, never published.
    await area.discard().catch(() => undefined);
    throw error;
  }
  // Published: a failure to clean up now leaves rows that the next import removes, not an error.
  await area.discard().catch(() => undefined);
  return summary;
}

/**
 * The stream in batches of at most `size` distinct addresses, a repeat merged into its batch's
 * earlier row exactly as the staging area merges a repeat across batches. Memory stays one batch.
 */
export async function* stagingBatches(
  rows: AsyncIterable<SubscriberInput>,
  size: number,
): AsyncGenerator<StagedRow[]> {
  let batch = new Map<string, StagedRow>();
  let seq = 0;
  for await (const row of rows) {
    seq += 1;
    const earlier = batch.get(row.address);
    if (earlier) {
      earlier.email = row.email;
      earlier.name = row.name;
      earlier.fields = { ...earlier.fields, ...row.fields };
      earlier.occurrences += 1;
      if (row.lists) earlier.lists = [...new Set([...(earlier.lists ?? []), ...row.lists])];
      continue;
    }
    batch.set(row.address, {
      seq,
      email: row.email,
      address: row.address,
      name: row.name,
      fields: { ...row.fields },
      occurrences: 1,
      ...(row.lists ? { lists: [...new Set(row.lists)] } : {}),
    });
    if (batch.size >= size) {
      yield [...batch.values()];
      batch = new Map();
    }
  }
  if (batch.size > 0) yield [...batch.values()];
}
