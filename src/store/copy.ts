/**
 * `migrate-db`: copies a SQLite database into an empty PostgreSQL one, table by table, keeping
 * every id, then checks that both hold the same number of rows per table and of deliveries per
 * newsletter and state. The copy is one PostgreSQL transaction: it lands whole, or not at all.
 *
 * The source is read in one read transaction (one snapshot). The caller holds the host's run
 * lock, so no send-due writes to it meanwhile. After the copy has committed, the source is
 * unbound from its host (meta `host_id` removed, an event recorded): a crontab line left on the
 * old host then meets the clone guard and refuses loudly, instead of sending from a ledger that
 * no longer is the truth. `newsletter host adopt` binds it again, on purpose.
 *
 * The column lists below follow migrations/sqlite/ and migrations/postgres/ (001_initial,
 * 002_bounces, 003_quota, then SQLite's 004 and PostgreSQL's 005 for forgotten_addresses); a
 * migration that changes a table changes its line here too. The two kinds number their
 * migrations apart (PostgreSQL has its own 004_import_staging): the source must be at SQLite's
 * latest version, the target is migrated to PostgreSQL's.
 */
import type Database from 'better-sqlite3';
import { DatabaseError } from '../domain/errors.js';
import type { Millis } from '../domain/types.js';
import { createPool, type Sql, transaction } from './postgres/connection.js';
import { PostgresStore } from './postgres/postgres-store.js';
import { currentVersion as sqliteVersion, latestVersion as sqliteLatest } from './sqlite/migrate.js';
import { openSqlite } from './sqlite/open.js';

type PgType = 'bigint' | 'integer' | 'text' | 'jsonb';

interface TableSpec {
  name: string;
  columns: [string, PgType][];
  /** Has an identity `id` whose sequence must move past the copied ids. */
  identity: boolean;
}

/** In foreign-key order. */
const TABLES: TableSpec[] = [
  {
    name: 'lists',
    identity: true,
    columns: [
      ['id', 'bigint'],
      ['name', 'text'],
      ['created_at', 'bigint'],
    ],
  },
  {
    name: 'subscribers',
    identity: true,
    columns: [
      ['id', 'bigint'],
      ['email', 'text'],
      ['address', 'text'],
      ['name', 'text'],
      ['fields', 'jsonb'],
      ['status', 'text'],
      ['unsubscribed_at', 'bigint'],
      ['created_at', 'bigint'],
      ['updated_at', 'bigint'],
      // SQLite's 007 and PostgreSQL's 008: how a global opt-out was made.
      ['unsubscribe_source', 'text'],
    ],
  },
  {
    name: 'memberships',
    identity: false,
    columns: [
      ['list_id', 'bigint'],
      ['subscriber_id', 'bigint'],
      ['created_at', 'bigint'],
    ],
  },
  { name: 'field_names', identity: false, columns: [['name', 'text']] },
  {
    // SQLite's 007 and PostgreSQL's 008: per-list opt-outs, by list name and address.
    name: 'list_opt_outs',
    identity: false,
    columns: [
      ['list_name', 'text'],
      ['address', 'text'],
      ['source', 'text'],
      ['created_at', 'bigint'],
    ],
  },
  {
    name: 'suppressions',
    identity: false,
    columns: [
      ['address', 'text'],
      ['reason', 'text'],
      ['source', 'text'],
      ['created_at', 'bigint'],
      // SQLite's 009 and PostgreSQL's 010: the report that suppressed it.
      ['report_id', 'text'],
    ],
  },
  {
    name: 'runs',
    identity: true,
    columns: [
      ['id', 'bigint'],
      ['host_id', 'text'],
      ['hostname', 'text'],
      ['pid', 'integer'],
      ['started_at', 'bigint'],
      ['lease_until', 'bigint'],
      ['ended_at', 'bigint'],
      ['outcome', 'text'],
      ['sent', 'integer'],
      ['failed', 'integer'],
      ['retry', 'integer'],
      ['unknown', 'integer'],
      ['skipped', 'integer'],
      ['error', 'text'],
      ['pid_scope', 'text'],
    ],
  },
  {
    name: 'newsletters',
    identity: true,
    columns: [
      ['id', 'bigint'],
      ['subject', 'text'],
      ['template_path', 'text'],
      ['from_address', 'text'],
      ['status', 'text'],
      ['scheduled_at', 'bigint'],
      ['body', 'jsonb'],
      ['failure_reason', 'text'],
      ['created_at', 'bigint'],
      ['updated_at', 'bigint'],
      ['started_at', 'bigint'],
      ['finished_at', 'bigint'],
      ['started_by_run', 'bigint'],
      // SQLite's 005 and PostgreSQL's 006: a pruned newsletter's counts.
      ['pruned_counts', 'jsonb'],
      ['pruned_at', 'bigint'],
      // SQLite's 008 and PostgreSQL's 009: the stored template and the zone of the send time.
      ['template_source', 'text'],
      ['template_stored_at', 'bigint'],
      ['scheduled_zone', 'text'],
      // SQLite's 011 and PostgreSQL's 013: the stored template's compiled HTML, JSON.
      ['template_compiled', 'text'],
      // SQLite's 006 and PostgreSQL's 007: the segment (src/domain/segment.ts), JSON.
      ['segment', 'jsonb'],
    ],
  },
  {
    name: 'newsletter_lists',
    identity: false,
    columns: [
      ['newsletter_id', 'bigint'],
      ['list_id', 'bigint'],
    ],
  },
  {
    name: 'deliveries',
    identity: true,
    columns: [
      ['id', 'bigint'],
      ['newsletter_id', 'bigint'],
      ['subscriber_id', 'bigint'],
      ['address', 'text'],
      ['state', 'text'],
      ['run_id', 'bigint'],
      ['attempts', 'integer'],
      ['next_attempt_at', 'bigint'],
      ['message_id', 'text'],
      ['smtp_reply', 'text'],
      ['queue_id', 'text'],
      ['reason', 'text'],
      ['claimed_at', 'bigint'],
      ['updated_at', 'bigint'],
    ],
  },
  {
    name: 'events',
    identity: true,
    columns: [
      ['id', 'bigint'],
      ['at', 'bigint'],
      ['kind', 'text'],
      ['detail', 'jsonb'],
    ],
  },
  {
    name: 'meta',
    identity: false,
    columns: [
      ['key', 'text'],
      ['value', 'text'],
    ],
  },
  {
    name: 'bounce_events',
    identity: true,
    columns: [
      ['id', 'bigint'],
      ['dsn_id', 'text'],
      ['address', 'text'],
      ['kind', 'text'],
      ['status', 'text'],
      ['reason', 'text'],
      ['at', 'bigint'],
      ['cleared_at', 'bigint'],
      // SQLite's 009 and PostgreSQL's 010: the delivery an authenticated report was about.
      ['delivery_id', 'bigint'],
      ['newsletter_id', 'bigint'],
    ],
  },
  {
    // Erased addresses stay erased on the new database (their key is in meta, copied above).
    name: 'forgotten_addresses',
    identity: false,
    columns: [
      ['address_hash', 'text'],
      ['created_at', 'bigint'],
    ],
  },
  {
    // The hour in progress carries on where the SQLite host left it: a move between two runs
    // must not hand the account a fresh quota.
    name: 'quota_usage',
    identity: false,
    columns: [
      ['account', 'text'],
      ['window_start', 'bigint'],
      ['used', 'integer'],
      ['updated_at', 'bigint'],
    ],
  },
];

/**
 * The host binding belongs to one machine's SQLite file (the clone guard); PostgreSQL has none,
 * since every host may send. It is not copied.
 */
const HOST_BINDING_KEYS = ['host_id', 'host_bound_at'];
const NOT_COPIED = `key NOT IN (${HOST_BINDING_KEYS.map((k) => `'${k}'`).join(', ')})`;

const BATCH = 1000;

/** pg_advisory_xact_lock key for copies: "nlcopydb" as a 64-bit number. */
const COPY_LOCK_KEY = '7956843971936347234';

export interface CopyCount {
  name: string;
  source: number;
  target: number;
}

export interface CopyReport {
  tables: CopyCount[];
  /** Deliveries per state, over all newsletters (checked per newsletter and state). */
  deliveryStates: CopyCount[];
  /** Meta keys of the source that were deliberately not copied. */
  notCopied: string[];
  /** The host id the source was bound to, now removed from it (null if it was not bound). */
  unboundHostId: string | null;
}

export interface CopyOptions {
  sqlitePath: string;
  busyTimeoutMs: number;
  postgresUrl: string;
  /** How the target is named in messages and in the source's event (no password). */
  targetDescription: string;
  now: Millis;
}

export async function copySqliteToPostgres(options: CopyOptions): Promise<CopyReport> {
  const db = openSqlite(options.sqlitePath, {
    create: false,
    readonly: false,
    busyTimeoutMs: options.busyTimeoutMs,
  });
  try {
    const version = sqliteVersion(db);
    if (version !== sqliteLatest()) {
      throw new DatabaseError(
        `${options.sqlitePath} has schema version ${version}; this newsletter copies version ${sqliteLatest()}.`,
        ['Run `newsletter init` on it first (with NEWSLETTER_DATABASE pointing at the SQLite file).'],
      );
    }
    // Creates the tables in an empty database (and refuses a foreign one), under the migration lock.
    const target = await PostgresStore.open(options.postgresUrl, { readonly: false });
    try {
      await target.migrate();
    } finally {
      await target.close();
    }

    const report = await copyInto(db, options);
    report.unboundHostId = unbindSource(db, options);
    return report;
  } finally {
    db.close();
  }
}

async function copyInto(db: Database.Database, options: CopyOptions): Promise<CopyReport> {
  const pool = createPool(options.postgresUrl, 1);
  db.exec('BEGIN'); // one snapshot of the source for the copy and its check
  try {
    return await transaction(
      pool,
      options.postgresUrl,
      { readonly: false, limitIdle: false },
      async (sql) => {
        // Two copies into the same database at once: the second waits here, then finds it full.
        await sql.query('SELECT pg_advisory_xact_lock($1::bigint)', [COPY_LOCK_KEY]);
        await refuseNonEmpty(sql, options.targetDescription);
        for (const table of TABLES) await copyTable(db, sql, table);
        for (const table of TABLES.filter((t) => t.identity)) {
          await sql.query(
            `SELECT setval(pg_get_serial_sequence('${table.name}', 'id'),
                         coalesce((SELECT max(id) FROM ${table.name}), 0) + 1, false)`,
          );
        }
        const report = await compare(db, sql);
        const mismatches = [...report.tables, ...report.deliveryStates].filter((c) => c.source !== c.target);
        if (mismatches.length > 0) {
          throw new DatabaseError('The copy does not match its source; nothing was written to PostgreSQL.', [
            ...mismatches.map((c) => `${c.name}: ${c.source} in SQLite, ${c.target} in PostgreSQL`),
            'This is a bug in newsletter; please report it with these lines.',
          ]);
        }
        return report;
      },
    );
  } finally {
    db.exec('COMMIT');
    await pool.end().catch(() => undefined);
  }
}

async function refuseNonEmpty(sql: Sql, where: string): Promise<void> {
  const counts = (
    await sql.query<{ name: string; n: number }>(
      TABLES.map((t) => `SELECT '${t.name}' AS name, count(*) AS n FROM ${t.name}`).join(' UNION ALL '),
    )
  ).rows.filter((row) => row.n > 0);
  if (counts.length > 0) {
    throw new DatabaseError(`${where} is not empty: refusing to copy into it.`, [
      `It holds ${counts.map((c) => `${c.n} ${c.name}`).join(', ')}.`,
      'migrate-db only fills a new, empty database (create one with `createdb`); it never merges.',
    ]);
  }
}

async function copyTable(db: Database.Database, sql: Sql, table: TableSpec): Promise<void> {
  const names = table.columns.map(([name]) => name);
  const where = table.name === 'meta' ? ` WHERE ${NOT_COPIED}` : '';
  const order = names.includes('id') ? ' ORDER BY id' : '';
  const rows = db
    .prepare(`SELECT ${names.join(', ')} FROM ${table.name}${where}${order}`)
    .iterate() as IterableIterator<Record<string, unknown>>;
  // unnest takes one array per column; jsonb travels as text and is cast on the way in.
  const insert = `INSERT INTO ${table.name} (${names.join(', ')})
    SELECT ${table.columns.map(([name, type]) => (type === 'jsonb' ? `u.${name}::jsonb` : `u.${name}`)).join(', ')}
    FROM unnest(${table.columns.map(([, type], i) => `$${i + 1}::${type === 'jsonb' ? 'text' : type}[]`).join(', ')})
         AS u(${names.join(', ')})`;
  let batch: Record<string, unknown>[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    await sql.query(
      insert,
      names.map((name) => batch.map((row) => row[name] ?? null)),
    );
    batch = [];
  };
  for (const row of rows) {
    batch.push(row);
    if (batch.length >= BATCH) await flush();
  }
  await flush();
}

async function compare(db: Database.Database, sql: Sql): Promise<CopyReport> {
  const tables: CopyCount[] = [];
  for (const table of TABLES) {
    const where = table.name === 'meta' ? ` WHERE ${NOT_COPIED}` : '';
    const source = (db.prepare(`SELECT count(*) AS n FROM ${table.name}${where}`).get() as { n: number }).n;
    const [target] = (await sql.query<{ n: number }>(`SELECT count(*) AS n FROM ${table.name}`)).rows;
    tables.push({ name: table.name, source, target: target?.n ?? 0 });
  }
  const key = (r: { newsletter_id: number; state: string }) => `${r.newsletter_id}:${r.state}`;
  const sourceStates = db
    .prepare('SELECT newsletter_id, state, count(*) AS n FROM deliveries GROUP BY newsletter_id, state')
    .all() as { newsletter_id: number; state: string; n: number }[];
  const targetStates = (
    await sql.query<{ newsletter_id: number; state: string; n: number }>(
      'SELECT newsletter_id, state, count(*) AS n FROM deliveries GROUP BY newsletter_id, state',
    )
  ).rows;
  const perKey = new Map<string, { state: string; source: number; target: number }>();
  for (const r of sourceStates) perKey.set(key(r), { state: r.state, source: r.n, target: 0 });
  for (const r of targetStates) {
    const entry = perKey.get(key(r)) ?? { state: r.state, source: 0, target: 0 };
    entry.target = r.n;
    perKey.set(key(r), entry);
  }
  const byState = new Map<string, CopyCount>();
  const mismatched: CopyCount[] = [];
  for (const [k, entry] of perKey) {
    const total = byState.get(entry.state) ?? { name: entry.state, source: 0, target: 0 };
    total.source += entry.source;
    total.target += entry.target;
    byState.set(entry.state, total);
    if (entry.source !== entry.target) mismatched.push({ name: `deliveries ${k}`, ...entry });
  }
  const notCopied = (
    db.prepare(`SELECT key FROM meta WHERE NOT (${NOT_COPIED}) ORDER BY key`).all() as { key: string }[]
  ).map((r) => r.key);
  return {
    tables,
    deliveryStates: [...[...byState.values()].sort((a, b) => a.name.localeCompare(b.name)), ...mismatched],
    notCopied,
    unboundHostId: null,
  };
}

function unbindSource(db: Database.Database, options: CopyOptions): string | null {
  return db
    .transaction(() => {
      const bound = db.prepare("SELECT value FROM meta WHERE key = 'host_id'").get() as
        | { value: string }
        | undefined;
      db.prepare(`DELETE FROM meta WHERE key IN (${HOST_BINDING_KEYS.map(() => '?').join(', ')})`).run(
        ...HOST_BINDING_KEYS,
      );
      db.prepare('INSERT INTO events (at, kind, detail) VALUES (?, ?, ?)').run(
        options.now,
        'migrated-to-postgres',
        JSON.stringify({ target: options.targetDescription, previousHostId: bound?.value ?? null }),
      );
      return bound?.value ?? null;
    })
    .immediate();
}
