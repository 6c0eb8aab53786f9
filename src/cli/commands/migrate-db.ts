/**
 * `newsletter migrate-db --to postgres://…`: moves from one host (SQLite) to several (PostgreSQL).
 * Copies the configured SQLite database into an empty PostgreSQL database with every id, checks
 * the counts, and unbinds the SQLite file from this host so that it can no longer send (see
 * src/store/copy.ts). Holds this host's run lock meanwhile: no send-due runs during the copy.
 */
import { describeDatabase } from '../../domain/database-location.js';
import { ConfigError, LockHeldError, UsageError } from '../../domain/errors.js';
import { acquireRunLock } from '../../host/run-lock.js';
import type { Context } from '../context.js';
import { printJson, println, table } from '../output.js';

export async function migrateDbCommand(
  context: Context,
  options: { to: string; json?: boolean },
): Promise<void> {
  const { config } = context;
  if (config.database.kind !== 'sqlite') {
    throw new UsageError(
      'migrate-db copies a SQLite database, but NEWSLETTER_DATABASE (or --database) is already a postgres:// URL.',
      [
        'Point --database at the SQLite file to copy, e.g. `newsletter --database ./newsletter.db migrate-db --to …`.',
      ],
    );
  }
  if (!/^postgres(ql)?:\/\//.test(options.to)) {
    throw new UsageError(
      `--to must be a postgres:// URL, e.g. postgres://newsletter@db.internal/newsletter.`,
    );
  }
  try {
    new URL(options.to);
  } catch {
    throw new ConfigError('--to is not a valid postgres:// URL.');
  }
  const target = describeDatabase({ kind: 'postgres', url: options.to });
  const source = config.database.path;

  const lock = await acquireRunLock({
    databasePath: source,
    lockDir: config.lockDir,
    staleMs: config.lockStaleMs,
    onCompromised: () => undefined,
  });
  if (!lock) {
    throw new LockHeldError(`A send-due run holds the lock on ${source}; nothing was copied.`, [
      'Stop the crontab line (or wait for the run to end), then run migrate-db again.',
    ]);
  }
  let report: Awaited<ReturnType<typeof import('../../store/copy.js').copySqliteToPostgres>>;
  try {
    const { copySqliteToPostgres } = await import('../../store/copy.js');
    report = await copySqliteToPostgres({
      sqlitePath: source,
      busyTimeoutMs: config.busyTimeoutMs,
      postgresUrl: options.to,
      targetDescription: target,
      now: Date.now(),
    });
  } finally {
    await lock.release().catch(() => undefined);
  }

  if (options.json) {
    printJson({ source, target, ...report });
    return;
  }
  println(`Copied ${source} into ${target}; the counts match.`);
  println();
  println(
    table(
      ['table', 'SQLite', 'PostgreSQL'],
      report.tables.map((t) => [t.name, t.source, t.target]),
    ),
  );
  if (report.deliveryStates.length > 0) {
    println();
    println(
      table(
        ['deliveries', 'SQLite', 'PostgreSQL'],
        report.deliveryStates.map((t) => [t.name, t.source, t.target]),
      ),
    );
  }
  println();
  if (report.notCopied.length > 0) {
    println(
      `Not copied: ${report.notCopied.join(', ')} (the SQLite file's host binding; PostgreSQL has none).`,
    );
  }
  println(
    `${source} is no longer bound to ${report.unboundHostId ? `host ${report.unboundHostId}` : 'any host'}: send-due refuses to send from it.`,
  );
  println('Next, on every host: set NEWSLETTER_DATABASE to the PostgreSQL URL, run `newsletter init`');
  println('(safe everywhere, at once), and keep the same crontab line. See docs/postgres.md.');
}
