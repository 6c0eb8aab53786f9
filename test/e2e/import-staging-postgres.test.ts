/**
 * `recipients import` on PostgreSQL (issue 11): the rows are staged under the import's id in
 * short transactions (migrations/postgres/004, src/store/postgres/import-staging.ts) and published
 * in one. All or nothing still holds: an invalid row imports nothing and leaves no staged rows;
 * an import killed after staging publishes nothing, and its rows are removed once stale; an import
 * whose staged rows were removed meanwhile refuses instead of publishing part of its file.
 *
 * The built CLI against a throwaway PostgreSQL server; failpoints stop the import exactly where a
 * test needs it, and "an hour later" is the staged row's time moved back on the database's clock.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Pool } from 'pg';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { type CliProcess, reapChildren, runCli, startCli } from '../helpers/cli-process.js';
import {
  describePostgres,
  type PgCluster,
  type PgDatabase,
  requireBuiltCli,
  sharedCluster,
  stopSharedCluster,
} from '../helpers/postgres.js';

const ROWS = 100_000;
/** Readers that exist before the big import: reader1 … reader10, also in the big file. */
const EXISTING = 10;
const SLOW = 240_000;

interface Setup {
  dir: string;
  database: PgDatabase;
  pool: Pool;
  /** A CSV `email,name,city` of readers `from` … `to`. */
  csv(name: string, to: number, extra?: string): Promise<string>;
  start(args: string[], failpoints?: string): CliProcess;
  count(table: string): Promise<number>;
}

describePostgres('recipients import on PostgreSQL: staged, then published in one transaction', () => {
  let cluster: PgCluster;
  const cleanups: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    requireBuiltCli();
    cluster = await sharedCluster();
  });

  afterEach(async () => {
    const left = await reapChildren();
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    expect(left, 'children left running').toEqual([]);
  });

  afterAll(stopSharedCluster);

  /** A new database, initialised, with EXISTING readers on the list `readers`. */
  async function prepare(): Promise<Setup> {
    const dir = await mkdtemp(path.join(tmpdir(), 'newsletter-pg-import-'));
    const database = await cluster.createDatabase('import');
    const pool = new Pool({ connectionString: database.url, max: 1, allowExitOnIdle: true });
    pool.on('error', () => undefined);
    cleanups.push(async () => {
      await pool.end();
      await database.drop();
      await rm(dir, { recursive: true, force: true });
    });
    const env = (failpoints = '') => ({
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: dir,
      NEWSLETTER_DATABASE: database.url,
      NEWSLETTER_HOST_ID: 'pg-import-host',
      NEWSLETTER_FAILPOINTS: failpoints,
    });
    const setup: Setup = {
      dir,
      database,
      pool,
      async csv(name, to, extra = '') {
        const rows = Array.from(
          { length: to },
          (_, i) => `reader${i + 1}@example.net,Reader ${i + 1},City ${i + 1}`,
        );
        const file = path.join(dir, name);
        await writeFile(file, `email,name,city\n${rows.join('\n')}\n${extra}`);
        return file;
      },
      start: (args, failpoints) => startCli(args, { cwd: dir, env: env(failpoints), timeoutMs: SLOW }),
      async count(table) {
        return Number((await pool.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);
      },
    };
    const init = await runCli(['init'], { cwd: dir, env: env(), timeoutMs: SLOW });
    expect(init.code, init.stderr).toBe(0);
    await importOk(setup, await setup.csv('existing.csv', EXISTING));
    return setup;
  }

  async function importOk(setup: Setup, file: string, failpoints = ''): Promise<unknown> {
    const result = await setup.start(
      ['recipients', 'import', file, '--list', 'readers', '--json'],
      failpoints,
    ).exited;
    expect(result.code, result.stderr).toBe(0);
    return JSON.parse(result.stdout);
  }

  const EXACT = { created: ROWS - EXISTING, updated: EXISTING, addedToList: ROWS - EXISTING };

  it(
    'an invalid row at the end of a 100,000-row file imports nothing and leaves no staged rows',
    async () => {
      const setup = await prepare();
      const file = await setup.csv('broken.csv', ROWS, 'not-an-address,Broken,Nowhere\n');
      const result = await setup.start(['recipients', 'import', file, '--list', 'others']).exited;
      expect(result.code, result.stderr).toBe(4);
      expect(result.stderr).toContain('nothing was imported');

      expect(await setup.count('subscribers')).toBe(EXISTING);
      expect(await setup.count('memberships')).toBe(EXISTING);
      expect((await setup.pool.query('SELECT name FROM lists')).rows).toEqual([{ name: 'readers' }]);
      expect(await setup.count('staged_imports')).toBe(0);
      expect(await setup.count('import_staging')).toBe(0);
    },
    SLOW,
  );

  it(
    'an import killed after staging 100,000 rows publishes nothing; its rows go once stale',
    async () => {
      const setup = await prepare();
      const file = await setup.csv('big.csv', ROWS);
      const killed = setup.start(['recipients', 'import', file, '--list', 'readers'], 'import-staged');
      await killed.waitForFailpoint('import-staged');
      killed.signal('SIGKILL');
      await killed.exited;
      expect(await setup.count('subscribers')).toBe(EXISTING);
      expect(await setup.count('import_staging')).toBe(ROWS);

      // The leftovers are never published: the next import counts exactly its own rows.
      expect(await importOk(setup, file)).toMatchObject(EXACT);
      expect(await setup.count('subscribers')).toBe(ROWS);
      expect(await setup.count('staged_imports')).toBe(1);

      // An hour later (on the database's clock), the next import removes them.
      await setup.pool.query("UPDATE staged_imports SET touched_at = now() - interval '61 minutes'");
      expect(await importOk(setup, await setup.csv('again.csv', EXISTING))).toMatchObject({
        created: 0,
        updated: EXISTING,
        addedToList: 0,
      });
      expect(await setup.count('staged_imports')).toBe(0);
      expect(await setup.count('import_staging')).toBe(0);
    },
    SLOW,
  );

  it(
    'an import whose staged rows were removed while it paused refuses to publish',
    async () => {
      const setup = await prepare();
      const file = await setup.csv('paused.csv', 5000);
      const paused = setup.start(['recipients', 'import', file, '--list', 'readers'], 'import-staged');
      await paused.waitForFailpoint('import-staged');
      // It stays stopped for "over an hour"; another import sweeps its rows away as abandoned.
      await setup.pool.query("UPDATE staged_imports SET touched_at = now() - interval '61 minutes'");
      await importOk(setup, await setup.csv('other.csv', EXISTING));
      expect(await setup.count('import_staging')).toBe(0);

      paused.signal('SIGCONT');
      const result = await paused.exited;
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain('no longer all there');
      expect(await setup.count('subscribers')).toBe(EXISTING);
    },
    SLOW,
  );
});
