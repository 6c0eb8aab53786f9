/**
 * `newsletter migrate-db --to postgres://…`: moves from one host (SQLite) to several (PostgreSQL).
 * Copies the configured SQLite database into an empty PostgreSQL database with every id, checks
 * the counts, and unbinds the SQLite file from this host so that it can no longer send (see
 * src/store/copy.ts). Holds this host's run lock meanwhile: no send-due runs during the copy.
 * The target comes from NEWSLETTER_MIGRATE_TO or --to-file, never a password in argv
 * (src/cli/migrate-target.ts).
 */
import { describeDatabase } from '../../domain/database-location.js';
import { LockHeldError, UsageError } from '../../domain/errors.js';
import { maskSecrets, secretForms } from '../../domain/secret-forms.js';
import { lockLocationOf } from '../../host/lock-location.js';
import { acquireRunLock } from '../../host/run-lock.js';
import type { Context } from '../context.js';
import { migrateTargetOf } from '../migrate-target.js';
import { extendRedactor, printJson, println, table, warn } from '../output.js';

export async function migrateDbCommand(
  context: Context,
  options: { to?: string; toFile?: string; json?: boolean },
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
  const destination = migrateTargetOf({ ...options, env: process.env, cwd: context.cwd });
  for (const text of destination.warnings) warn(text);
  // The target's password is not part of the configuration, so the redactor set from it does not
  // know it: a copy error quoting the URL must not show it either.
  const password = new URL(destination.url).password;
  if (password) {
    const forms = [password, ...secretForms(safeDecode(password))];
    extendRedactor((text) => maskSecrets(text, forms));
  }
  const target = describeDatabase({ kind: 'postgres', url: destination.url });
  const source = config.database.path;

  const lock = await acquireRunLock({
    ...lockLocationOf(config.database, config.lockDir),
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
      postgresUrl: destination.url,
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

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
