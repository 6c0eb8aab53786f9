/**
 * The send path's statements on PostgreSQL read a batch, not the newsletter's whole ledger: a
 * statement whose plan scans every ledger row of the newsletter costs a send of n recipients
 * O(n²) in all (bench/NOTES.md, issue 17, session 5). Checked on the plan PostgreSQL chooses for
 * a real ledger of 20,000 rows, half of them sent, with the statistics a send meets (taken before
 * the ledger grew), since a regression shows in the plan long before it shows in time. (With the
 * statement as it was, this test fails: the planner read the newsletter's rows through
 * deliveries_by_state.) The send path's statements are prepared and may run on their generic
 * plans (the claim's candidate query always does: claim.ts), so those plans are checked too.
 */
import pg from 'pg';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { candidatesStatement } from '../../src/store/postgres/claim.js';
import { LOCK_NEWSLETTERS_OF_BATCH } from '../../src/store/postgres/fence.js';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { DELIVERY_COLUMNS } from '../../src/store/report-store.js';
import {
  describePostgres,
  type PgCluster,
  type PgDatabase,
  sharedCluster,
  stopSharedCluster,
} from '../helpers/postgres.js';
import { addresses, claim, sendingNewsletter, sentWrite } from '../helpers/store-fixtures.js';

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Index Cond'?: string;
  Plans?: PlanNode[];
}

function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
}

function planOf(rows: unknown[]): PlanNode {
  const plan = (rows[0] as { 'QUERY PLAN': { Plan: PlanNode }[] })['QUERY PLAN'][0]?.Plan;
  if (!plan) throw new Error('no plan');
  return plan;
}

/** Every access to the ledger is by primary key: never a scan of the newsletter's rows. */
function expectBatchByPrimaryKey(plan: PlanNode): void {
  const onDeliveries = nodes(plan).filter(
    (node) => node['Relation Name'] === 'deliveries' || node['Index Name']?.startsWith('deliveries'),
  );
  expect(onDeliveries.length).toBeGreaterThan(0);
  expect(
    onDeliveries.filter((node) => node['Index Name'] && node['Index Name'] !== 'deliveries_pkey'),
  ).toEqual([]);
  expect(onDeliveries.map((node) => node['Node Type'])).not.toContain('Seq Scan');
}

describePostgres('PostgreSQL: the outcome write reads its batch, not the ledger', () => {
  let cluster: PgCluster;
  let database: PgDatabase | null = null;

  beforeAll(async () => {
    cluster = await sharedCluster();
  });
  afterEach(async () => {
    await database?.drop();
    database = null;
  });
  afterAll(async () => {
    await stopSharedCluster();
  });

  it("locks the batch's newsletters through the rows' primary key alone", async () => {
    database = await cluster.createDatabase('plans');
    const store = await PostgresStore.open(database.url, { readonly: false });
    const client = new pg.Client({ connectionString: database.url });
    try {
      await store.migrate();
      const now = Date.now();
      const { newsletter, starter } = await sendingNewsletter(store, {
        list: 'readers',
        recipients: addresses(20_000),
        now,
      });
      // Statistics as a send meets them: taken before the ledger grew (autovacuum analyzes later,
      // and a send of many thousands is over long before). With them, the planner takes the
      // newsletter's index for a cheap one, unless the statement leaves it no choice.
      await client.connect();
      await client.query('ANALYZE');
      let batch: number[] = [];
      for (let after = 0; ; ) {
        const claimed = await claim(store, {
          newsletterId: newsletter.id,
          runId: starter.id,
          limit: 2000,
          now,
          afterSubscriberId: after,
        });
        if (claimed.claimed.length === 0) break;
        after = claimed.lastSubscriberId;
        batch = claimed.claimed.slice(0, 20).map((row) => row.deliveryId);
        // Half the ledger sent, as in the middle of a send.
        if (after <= 10_000) await store.recordOutcomes(starter.id, claimed.claimed.map(sentWrite), now);
      }
      const explained = await client.query(`EXPLAIN (FORMAT JSON) ${LOCK_NEWSLETTERS_OF_BATCH}`, [batch]);
      expectBatchByPrimaryKey(planOf(explained.rows));
      // The statement is prepared (connection.ts): after five calls PostgreSQL may keep its
      // generic plan, made without the batch's ids. That plan must read the batch the same way.
      await client.query('SET plan_cache_mode = force_generic_plan');
      await client.query(`PREPARE lock_batch AS ${LOCK_NEWSLETTERS_OF_BATCH}`);
      const generic = await client.query(`EXPLAIN (FORMAT JSON) EXECUTE lock_batch('{${batch.join(',')}}')`);
      expectBatchByPrimaryKey(planOf(generic.rows));

      // The claim's candidate query runs on its generic plan (claim.ts, GENERIC_PLAN). Made
      // without the hint, that plan must still start at the hint, in the subscribers and in the
      // memberships alike: a plan that read either from its start would cost a claim more the
      // further a send had got.
      const candidates = candidatesStatement(newsletter.id, 10_000, 20, null);
      await client.query(`PREPARE candidates AS ${candidates.text}`);
      const candidatePlan = planOf(
        (await client.query(`EXPLAIN (FORMAT JSON) EXECUTE candidates(${newsletter.id}, 10000, 20)`)).rows,
      );
      for (const table of ['subscribers', 'memberships']) {
        const reads = nodes(candidatePlan).filter((node) => node['Relation Name'] === table);
        expect(reads.length, table).toBeGreaterThan(0);
        for (const read of reads) {
          expect(read['Node Type'], table).toMatch(/Index/);
          expect(read['Index Cond'], table).toMatch(/(id|subscriber_id) > \$2/);
        }
      }

      // A DSN or an ARF report without a token finds its delivery by the newsletter its Message-ID
      // names and the address it reports (src/bounces/authenticate.ts): through the ledger's
      // UNIQUE (newsletter_id, address) key, never by reading the ledger. The ledger keeps no
      // Message-ID index since migration 014 (issue 17, session 8).
      const [sent] = (
        await client.query<{ newsletter_id: number; address: string; message_id: string }>(
          "SELECT newsletter_id, address, message_id FROM deliveries WHERE state = 'sent' LIMIT 1",
        )
      ).rows;
      const byAddress = planOf(
        (
          await client.query(
            `EXPLAIN (FORMAT JSON) SELECT ${DELIVERY_COLUMNS} FROM deliveries WHERE newsletter_id = $1 AND address = $2`,
            [sent?.newsletter_id, sent?.address],
          )
        ).rows,
      );
      const ledgerReads = nodes(byAddress).filter(
        (node) => node['Relation Name'] === 'deliveries' || node['Index Name']?.startsWith('deliveries'),
      );
      expect(ledgerReads.map((node) => node['Node Type'])).not.toContain('Seq Scan');
      expect(ledgerReads.map((node) => node['Index Name'])).toContain('deliveries_newsletter_id_address_key');
      const indexes = await client.query<{ indexname: string }>(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'deliveries'",
      );
      expect(indexes.rows.map((row) => row.indexname)).not.toContain('deliveries_by_message_id');
      expect(await store.deliveryTo(sent?.newsletter_id ?? 0, sent?.address ?? '')).toEqual(
        expect.objectContaining({ messageId: sent?.message_id }),
      );
    } finally {
      await client.end().catch(() => undefined);
      await store.close();
    }
  }, 60_000);
});
