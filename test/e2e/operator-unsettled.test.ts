/**
 * Every non-final state that needs a person is shown by `status` and `doctor`, with the command
 * that settles it, and `reconcile` settles it (issue 11). The states are ones older versions could
 * leave in a database and the current engine never does, so each test builds its own in a real
 * SQLite file: a run claims rows through the Store, then SQL closes the run and leaves them
 * `claimed` (stranded); a cancelled newsletter gets a `retry` row back. Then the built CLI.
 */
import Database from 'better-sqlite3';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/domain/exit-codes.js';
import type { Unsettled } from '../../src/domain/unsettled.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { assertBuilt, describeRun, makeWorkspace, type Workspace } from '../helpers/cli.js';
import { closeRunLeavingClaims, forceRetry } from '../helpers/damage.js';

interface Check {
  name: string;
  level: 'ok' | 'warning' | 'problem';
  message: string;
  fix?: string;
}
interface Row {
  id: number;
  address: string;
  state: string;
  reason: string | null;
  run_id: number | null;
}

const workspaces: Workspace[] = [];
beforeAll(() => assertBuilt());
afterEach(async () => {
  for (const ws of workspaces.splice(0)) await ws.cleanup();
});

/**
 * Four readers; `send-due --max-messages 1` sends one. Then a run claims the other three and is
 * closed with SQL, leaving them `claimed`: newsletter 1 is `sending`, nothing is left to claim,
 * no run is live, and three stranded rows keep it open. With `live`, a second, open run holds one
 * of the three instead.
 */
async function strandedWorkspace(options: { live?: boolean } = {}) {
  const ws = await makeWorkspace('newsletter-unsettled-');
  workspaces.push(ws);
  ws.env.NEWSLETTER_TRANSPORT = 'file:./outbox';
  await ws.ok(['init']);
  const { file } = await ws.writeCsv(4);
  await ws.ok(['recipients', 'import', file, '--list', 'readers']);
  const id = await ws.createDue();
  await ws.ok(['send-due', '--max-messages', '1']);

  const store = SqliteStore.open(ws.db, { create: false, readonly: false, busyTimeoutMs: 5000 });
  try {
    const claimFor = async (limit: number) => {
      const run = await store.registerRun({
        hostId: 'old-version',
        hostname: 'old',
        pid: 999_999,
        pidScope: null,
        now: Date.now(),
        leaseMs: 3_600_000,
      });
      const claimed = await store.claimBatch({
        newsletterId: id,
        runId: run.id,
        limit,
        now: Date.now(),
        afterSubscriberId: 0,
        messageIds: { secret: 'old-secret', fromDomain: 'old.example.org' },
      });
      return { run, claimed: claimed.claimed };
    };
    const closed = await claimFor(options.live ? 2 : 3);
    await closeRunLeavingClaims({ kind: 'sqlite', location: ws.db }, closed.run.id, Date.now());
    const live = options.live ? await claimFor(1) : null;
    return {
      ws,
      id,
      stranded: closed.claimed.map((c) => c.address),
      held: live?.claimed.map((c) => c.address) ?? [],
    };
  } finally {
    await store.close();
  }
}

function ledger(ws: Workspace): Row[] {
  const db = new Database(ws.db, { readonly: true });
  try {
    return db.prepare('SELECT id, address, state, reason, run_id FROM deliveries ORDER BY id').all() as Row[];
  } finally {
    db.close();
  }
}

async function status(ws: Workspace) {
  return ws.json<{ attention: string[]; unsettled: Unsettled[] }>(['status', '--json']);
}

async function doctor(ws: Workspace) {
  const cron = await ws.write(
    'crontab',
    `MAILTO=ops@example.org\n* * * * * newsletter --database ${ws.db} send-due\n`,
  );
  const result = await ws.run(['doctor', '--json', '--crontab', cron]);
  const report = JSON.parse(result.stdout) as { checks: Check[] };
  const check = (name: string) => report.checks.find((c) => c.name === name);
  return { result, check };
}

describe('stranded claims: rows claimed by a run that has ended', () => {
  it('status and doctor show them and the sending newsletter they hold open, with the commands', async () => {
    const { ws } = await strandedWorkspace();
    const shown = await status(ws);
    expect(shown.unsettled).toEqual([
      {
        kind: 'stranded',
        newsletterId: 1,
        count: 3,
        message: expect.stringContaining('3 deliveries claimed by a run that has ended'),
        command: 'newsletter reconcile 1 --mark-sent|--resend [EMAIL…]',
      },
      {
        kind: 'sending-idle',
        newsletterId: 1,
        count: 3,
        message: expect.stringContaining('nothing is left to claim'),
        command: 'newsletter reconcile 1 --mark-sent|--resend [EMAIL…]',
      },
    ]);
    expect(shown.attention).toContainEqual(
      expect.stringMatching(
        /newsletter 1: 3 deliveries claimed by a run that has ended.*`newsletter reconcile 1/,
      ),
    );
    // Not the "between two cron runs" hint: no run would ever finish this one.
    expect(shown.attention.join('\n')).not.toContain('is the cron line');
    const screen = await ws.ok(['status']);
    expect(screen.stderr).toContain('3 deliveries claimed by a run that has ended');

    const { result, check } = await doctor(ws);
    expect(result.code, describeRun(['doctor'], result)).toBe(ExitCode.partlyFailed);
    expect(check('stranded')).toMatchObject({
      level: 'problem',
      message: expect.stringContaining('newsletter 1: 3 deliveries claimed by a run that has ended'),
      fix: expect.stringContaining('`newsletter reconcile 1 --mark-sent|--resend [EMAIL…]`'),
    });
    expect(check('sending-idle')).toMatchObject({ level: 'warning' });
    expect(check('sending')).toBeUndefined();
  });

  it('reconcile --resend makes them due again; the next send-due sends them and completes the newsletter', async () => {
    const { ws, stranded } = await strandedWorkspace();
    const resent = await ws.run(['reconcile', '1', '--resend']);
    expect(resent.code, describeRun(['reconcile'], resent)).toBe(0);
    expect(resent.stdout).toContain('3 unknown deliveries (3 of them claimed by a run that had ended)');
    expect(
      ledger(ws)
        .filter((row) => stranded.includes(row.address))
        .map((row) => row.state),
    ).toEqual(['retry', 'retry', 'retry']);
    expect((await status(ws)).unsettled).toEqual([]);

    await ws.ok(['send-due']);
    expect(ledger(ws).map((row) => row.state)).toEqual(['sent', 'sent', 'sent', 'sent']);
    const shown = await ws.json<{ status: string }>(['show', '1', '--json']);
    expect(shown.status).toBe('sent');
    expect((await doctor(ws)).check('stranded')).toBeUndefined();
  });

  it('reconcile --mark-sent settles them, never a row a live run holds, and says so', async () => {
    const { ws, stranded, held } = await strandedWorkspace({ live: true });
    expect((await status(ws)).unsettled).toEqual([
      expect.objectContaining({ kind: 'stranded', newsletterId: 1, count: 2 }),
    ]);
    const result = await ws.run(['reconcile', '1', '--mark-sent', stranded[0]!, held[0]!]);
    expect(result.code, describeRun(['reconcile'], result)).toBe(0);
    expect(result.stdout).toContain(
      '1 unknown deliveries (1 of them claimed by a run that had ended) marked sent',
    );
    expect(result.stderr).toContain(`${held[0]} is being sent by a live run of newsletter 1`);
    const rows = new Map(ledger(ws).map((row) => [row.address, row]));
    expect(rows.get(stranded[0]!)).toMatchObject({ state: 'sent' });
    expect(rows.get(held[0]!)).toMatchObject({ state: 'claimed' });

    // Without addresses: every stranded row, and still not the live run's.
    const all = await ws.json<object>(['reconcile', '1', '--mark-sent', '--json']);
    expect(all).toMatchObject({ changed: 1, stranded: 1, notUnknown: [], refused: null });
    expect(new Map(ledger(ws).map((row) => [row.address, row.state])).get(held[0]!)).toBe('claimed');
  });
});

describe('a cancelled newsletter with retry rows', () => {
  it('status and doctor show them; --resend is refused; reconcile writes them skipped (cancelled)', async () => {
    const { ws, stranded } = await strandedWorkspace();
    await ws.ok(['cancel', '1']);
    // An older version's batch in flight during the cancel wrote a retry.
    const [first, second] = ledger(ws).filter((row) => stranded.includes(row.address));
    await forceRetry({ kind: 'sqlite', location: ws.db }, [first!.id], Date.now());

    const shown = await status(ws);
    expect(shown.unsettled).toEqual([
      expect.objectContaining({
        kind: 'stranded',
        count: 2,
        command: 'newsletter reconcile 1 --mark-sent [EMAIL…]',
      }),
      {
        kind: 'cancelled-retry',
        newsletterId: 1,
        count: 1,
        message: 'newsletter 1 is cancelled, but 1 delivery waits for a retry that never comes',
        command: 'newsletter reconcile 1 --mark-sent EMAIL…',
      },
    ]);
    const { result, check } = await doctor(ws);
    expect(result.code).toBe(ExitCode.partlyFailed);
    expect(check('cancelled-retry')).toMatchObject({
      level: 'problem',
      fix: expect.stringContaining('reconcile 1'),
    });

    const refused = await ws.run(['reconcile', '1', '--resend']);
    expect(refused.code, describeRun(['reconcile'], refused)).toBe(ExitCode.input);
    expect(refused.stderr).toContain(
      'Newsletter 1 is cancelled, and a cancelled newsletter sends nothing: --resend is refused',
    );
    // Refused, it changed nothing.
    const rows = new Map(ledger(ws).map((row) => [row.id, row]));
    expect(rows.get(first!.id)).toMatchObject({ state: 'retry' });
    expect(rows.get(second!.id)).toMatchObject({ state: 'claimed' });

    const marked = await ws.ok(['reconcile', '1', '--mark-sent']);
    expect(marked.stdout).toContain(
      '1 deliveries waiting for a retry of the cancelled newsletter 1 are now skipped',
    );
    expect(new Map(ledger(ws).map((row) => [row.id, row])).get(first!.id)).toMatchObject({
      state: 'skipped',
      reason: 'cancelled',
    });
    expect(
      ledger(ws)
        .map((row) => row.state)
        .sort(),
    ).toEqual(['sent', 'sent', 'sent', 'skipped']);
    expect((await status(ws)).unsettled).toEqual([]);
    expect((await doctor(ws)).result.code).toBe(0);
    expect((await ws.json<{ status: string }>(['show', '1', '--json'])).status).toBe('cancelled');
  });
});

describe('a sending newsletter with nothing left to claim and no stranded row', () => {
  it('is shown with `newsletter send-due`, which completes it', async () => {
    const { ws } = await strandedWorkspace();
    await ws.ok(['reconcile', '1', '--mark-sent']);
    const shown = await status(ws);
    expect(shown.unsettled).toEqual([
      {
        kind: 'sending-idle',
        newsletterId: 1,
        count: 0,
        message: expect.stringContaining('the next send-due completes it'),
        command: 'newsletter send-due',
      },
    ]);
    await ws.ok(['send-due']);
    expect((await status(ws)).unsettled).toEqual([]);
    expect((await ws.json<{ status: string }>(['show', '1', '--json'])).status).toBe('sent');
  });
});
