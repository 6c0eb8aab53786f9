/**
 * Twenty hosts run `newsletter init` against one new PostgreSQL database at the same moment
 * (a fleet deployed at once): the schema is migrated once, every init succeeds, and the others
 * find it current. The migration's transaction-scoped advisory lock is what queues them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'pg';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import {
  describePostgres,
  killChildren,
  type PgCluster,
  requireBuiltCli,
  sharedCluster,
  startCli,
  stopSharedCluster,
} from '../helpers/postgres.js';

const INITS = 20;

describePostgres('20 concurrent init on one PostgreSQL database', () => {
  let cluster: PgCluster;

  beforeAll(async () => {
    requireBuiltCli();
    cluster = await sharedCluster();
  });

  afterEach(() => {
    expect(killChildren(), 'a CLI process outlived its test').toBe(0);
  });

  afterAll(stopSharedCluster);

  it('migrates once; every init succeeds', async () => {
    const database = await cluster.createDatabase('init');
    const dir = mkdtempSync(join(tmpdir(), 'newsletter-init-'));
    const pool = new Pool({ connectionString: database.url, max: 1, allowExitOnIdle: true });
    pool.on('error', () => undefined);
    try {
      const started = Array.from({ length: INITS }, (_, i) =>
        startCli(
          ['init', '--json'],
          { NEWSLETTER_DATABASE: database.url, NEWSLETTER_HOST_ID: `host-${i}` },
          { cwd: dir, timeoutMs: 60_000 },
        ),
      );
      const results = await Promise.all(started.map((cli) => cli.exited));
      for (const result of results) expect(result.code, result.stderr).toBe(0);
      const reports = results.map((r) => JSON.parse(r.stdout) as { schemaFrom: number; schemaTo: number });
      const latest = Math.max(...reports.map((r) => r.schemaTo));
      expect(latest).toBeGreaterThan(0);
      expect(reports.every((r) => r.schemaTo === latest)).toBe(true);
      // Exactly one of them found the database empty and migrated it.
      expect(reports.filter((r) => r.schemaFrom === 0)).toHaveLength(1);
      expect(reports.filter((r) => r.schemaFrom === latest)).toHaveLength(INITS - 1);

      const applied = await pool.query<{ version: number }>(
        'SELECT version FROM schema_migrations ORDER BY version',
      );
      expect(applied.rows.map((r) => r.version)).toEqual(Array.from({ length: latest }, (_, i) => i + 1));
      const tables = await pool.query<{ n: string }>(
        "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = 'public' AND table_name = 'deliveries'",
      );
      expect(Number(tables.rows[0]?.n)).toBe(1);
      // No host binding on PostgreSQL: the database is shared on purpose.
      const meta = await pool.query("SELECT 1 FROM meta WHERE key = 'host_id'");
      expect(meta.rowCount).toBe(0);
    } finally {
      await pool.end();
      await database.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);
});
