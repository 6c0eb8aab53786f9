/**
 * Nobody stranded (issue 11): every error path and every operator action mid-send ends with each
 * recipient in a final, visible state, on a real SQLite file with the built CLI, a real SMTP sink
 * and real competing processes: a write lock held by another process a little longer than the
 * busy timeout, again and again; a 100,000-row import at the same time; a database locked past a
 * run's lease; a `schedule` during a build; a `cancel` during a send; and a database that an
 * older version left with rows `claimed` by a closed run.
 *
 * Order comes from failpoints (the run stops itself at a named point) and from lines the helper
 * processes print; nothing sleeps to order events.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { createInterface } from 'node:readline';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { LEDGER_REASON } from '../../src/domain/ledger-reasons.js';
import { perTest, type Workspace } from '../helpers/workspace.js';

const resources = perTest();

const OK = 0;
const PARTLY_FAILED = 8;
const TRANSIENT = 9;

/**
 * Another program writing to the database: it takes SQLite's write lock (BEGIN IMMEDIATE), holds
 * it for `holdMs`, lets go for `gapMs`, and again, until it is told to stop (SIGTERM). It prints
 * `held` the first time it holds the lock, so that tests start the contention on that line.
 */
const LOCK_LOOP = `
const Database = require(process.argv[1]);
const [file, holdMs, gapMs] = process.argv.slice(2);
const db = new Database(file, { timeout: 60000 });
let first = true, stop = false, rounds = 0;
process.on('SIGTERM', () => { stop = true; });
function hold() {
  if (stop) { console.log('rounds ' + rounds); db.close(); process.exit(0); }
  db.exec('BEGIN IMMEDIATE');
  rounds += 1;
  if (first) { console.log('held'); first = false; }
  setTimeout(() => { db.exec('COMMIT'); setTimeout(hold, Number(gapMs)); }, Number(holdMs));
}
hold();
`;

interface LockLoop {
  child: ChildProcess;
  /** Stops after the current round; resolves with how many times it held the lock. */
  stop(): Promise<number>;
}

async function startLockLoop(dbPath: string, holdMs: number, gapMs: number): Promise<LockLoop> {
  const betterSqlite = createRequire(import.meta.url).resolve('better-sqlite3');
  const child = spawn(
    process.execPath,
    ['-e', LOCK_LOOP, betterSqlite, dbPath, String(holdMs), String(gapMs)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const first = await lines.next();
  if (first.value !== 'held') throw new Error(`the lock loop did not start: ${String(first.value)}`);
  return {
    child,
    async stop() {
      child.kill('SIGTERM');
      const last = await lines.next();
      return Number(String(last.value).replace('rounds ', ''));
    },
  };
}

/** Holds the write lock until released: a backup tool or a long transaction of another program. */
function holdWriteLock(dbPath: string): { release(): void } {
  const db = new Database(dbPath, { timeout: 60_000 });
  db.exec('BEGIN IMMEDIATE');
  return {
    release() {
      db.exec('ROLLBACK');
      db.close();
    },
  };
}

async function writeBigCsv(ws: Workspace, rows: number): Promise<string> {
  const file = path.join(ws.dir, 'crm-export.csv');
  const lines = ['email,name,city'];
  for (let i = 0; i < rows; i++) lines.push(`member${i}@crm.example.com,Member ${i},Town ${i % 97}`);
  await writeFile(file, `${lines.join('\n')}\n`);
  return file;
}

function claimedOrRetry(ws: Workspace): number {
  return ws.ledger().filter((row) => row.state === 'claimed' || row.state === 'retry').length;
}

function duplicates(ws: Workspace, received: (address: string) => number): string[] {
  return ws.addresses.filter((address) => received(address) > 1);
}

describe('nobody stranded: a busy database', () => {
  it('a send during a 100,000-row import and a write lock held past the busy timeout, again and again, completes: every known outcome recorded, nobody twice', async () => {
    const audience = 100;
    const sink = await resources.sink();
    const ws = await resources.workspace({
      recipients: audience,
      transport: sink.url,
      env: { NEWSLETTER_BATCH: '10', NEWSLETTER_BUSY_TIMEOUT: '200ms' },
    });
    const csv = await writeBigCsv(ws, 100_000);

    const send = ws.start(['send-due'], { NEWSLETTER_FAILPOINTS: 'after-claim' });
    await send.waitForFailpoint('after-claim');
    // Another program takes the write lock for 300 ms (longer than the run's 200 ms busy
    // timeout), lets go for 50 ms, and again, for as long as the send runs.
    const locker = await startLockLoop(ws.dbPath, 300, 50);
    // An operator imports a CRM export into another list meanwhile (a person waits longer).
    const importing = ws.start(['recipients', 'import', csv, '--list', 'crm'], {
      NEWSLETTER_BUSY_TIMEOUT: '60s',
    });
    send.signal('SIGCONT');
    const sent = await send.exited;
    const rounds = await locker.stop();
    const imported = await importing.exited;

    expect(sent, sent.stderr).toMatchObject({ code: OK, stdout: '' });
    expect(imported.code, imported.stderr).toBe(OK);
    expect(rounds).toBeGreaterThan(1);
    const shown = await ws.show();
    expect(shown.status).toBe('sent');
    expect(shown.counts).toMatchObject({
      audience,
      sent: audience,
      unknown: 0,
      claimed: 0,
      retry: 0,
      pending: 0,
    });
    expect(claimedOrRetry(ws)).toBe(0);
    expect(sink.messages).toHaveLength(audience);
    expect(duplicates(ws, (a) => sink.received(a))).toEqual([]);
    expect(
      ws.query<{ n: number }>(
        "SELECT count(*) AS n FROM memberships m JOIN lists l ON l.id = m.list_id WHERE l.name = 'crm'",
      )[0]?.n,
    ).toBe(100_000);
  });

  it('a database locked past the lease: the run exits 9 and leaves its run open; the next run settles what the server got as unknown and sends the rest', async () => {
    const audience = 20;
    const batch = 5;
    const sink = await resources.sink();
    const ws = await resources.workspace({
      recipients: audience,
      transport: sink.url,
      env: { NEWSLETTER_BATCH: String(batch), NEWSLETTER_BUSY_TIMEOUT: '200ms', NEWSLETTER_LEASE: '3s' },
    });

    const send = ws.start(['send-due'], { NEWSLETTER_FAILPOINTS: 'after-send-before-record' });
    await send.waitForFailpoint('after-send-before-record');
    expect(sink.messages).toHaveLength(batch);
    const lock = holdWriteLock(ws.dbPath);
    send.signal('SIGCONT');
    const failed = await send.exited;
    lock.release();

    expect(failed.code, failed.stderr).toBe(TRANSIENT);
    expect(failed.stderr).toMatch(
      /database stayed busy or out of reach while this run tried to record what the server replied/,
    );
    expect(failed.stderr).not.toMatch(/\n\s+at /); // no stack trace
    // It could not even close its run: the run row stays open with its claims, for expiry.
    const [stuck] = await ws.runs();
    expect(stuck).toMatchObject({ endedAt: null });
    expect(ws.ledger().filter((row) => row.state === 'claimed')).toHaveLength(batch);

    const next = await ws.run(['send-due']);
    expect(next.code, next.stderr).toBe(PARTLY_FAILED);
    expect(next.stderr).toContain(`${batch} deliveries of crashed runs are now unknown`);
    const shown = await ws.show();
    expect(shown.status).toBe('sent');
    expect(shown.counts).toMatchObject({
      audience,
      sent: audience - batch,
      unknown: batch,
      claimed: 0,
      retry: 0,
    });
    // Everyone the ledger calls unknown is exactly who the server got from the failed run.
    const unknown = ws
      .ledger()
      .filter((row) => row.state === 'unknown')
      .map((row) => row.address)
      .sort();
    expect(unknown).toEqual(
      sink.messages
        .slice(0, batch)
        .flatMap((m) => m.to)
        .sort(),
    );
    expect(sink.messages).toHaveLength(audience);
    expect(duplicates(ws, (a) => sink.received(a))).toEqual([]);
  });

  it('a lock released within the lease: the known outcomes are recorded as sent, nothing is unknown', async () => {
    const audience = 10;
    const batch = 5;
    const sink = await resources.sink();
    const ws = await resources.workspace({
      recipients: audience,
      transport: sink.url,
      env: { NEWSLETTER_BATCH: String(batch), NEWSLETTER_BUSY_TIMEOUT: '200ms' },
    });
    const send = ws.start(['--verbose', 'send-due'], { NEWSLETTER_FAILPOINTS: 'after-send-before-record' });
    await send.waitForFailpoint('after-send-before-record');
    const lock = holdWriteLock(ws.dbPath);
    send.signal('SIGCONT');
    // The run meets the lock on its outcome write, says so (with --verbose), and waits.
    await send.waitForStderr('the database is busy (recordOutcomes)');
    lock.release();
    const done = await send.exited;
    expect(done.code, done.stderr).toBe(OK);
    expect((await ws.show()).counts).toMatchObject({ sent: audience, unknown: 0, claimed: 0, retry: 0 });
    expect(sink.messages).toHaveLength(audience);
  });
});

describe('nobody stranded: operators acting during a run', () => {
  it('schedule --at LATER while the run builds the body wins: nothing is sent, the new time stands', async () => {
    const sink = await resources.sink();
    const ws = await resources.workspace({ recipients: 5, transport: sink.url });
    const send = ws.start(['send-due'], { NEWSLETTER_FAILPOINTS: 'after-build' });
    await send.waitForFailpoint('after-build');
    const postponed = await ws.ok(['schedule', String(ws.newsletterId), '--at', '+2h']);
    expect(postponed.stdout).toMatch(/scheduled/i);
    send.signal('SIGCONT');
    const done = await send.exited;
    expect(done, done.stderr).toMatchObject({ code: OK, stdout: '' });

    const shown = await ws.show();
    expect(shown.status).toBe('scheduled');
    expect(shown.counts).toMatchObject({ sent: 0, claimed: 0, pending: 5 });
    expect(sink.messages).toHaveLength(0);
    // The next run finds nothing due.
    expect(await ws.run(['send-due'])).toMatchObject({ code: OK, stdout: '', stderr: '' });
    expect(sink.messages).toHaveLength(0);
  });

  it('cancel during a send with 4xx replies in flight: every row final, "cancelled" where it never went out, the counts add up', async () => {
    const audience = 20;
    const batch = 5;
    const sink = await resources.sink({
      faults: [
        {
          to: 'reader0002@example.net',
          fault: { kind: 'rejectRcpt', code: 450, text: '4.2.0 Mailbox busy' },
        },
        {
          to: 'reader0004@example.net',
          fault: { kind: 'rejectRcpt', code: 450, text: '4.2.0 Mailbox busy' },
        },
      ],
    });
    const ws = await resources.workspace({
      recipients: audience,
      transport: sink.url,
      env: { NEWSLETTER_BATCH: String(batch), NEWSLETTER_RETRY_AFTER: '1m' },
    });
    const send = ws.start(['send-due'], { NEWSLETTER_FAILPOINTS: 'after-send-before-record' });
    await send.waitForFailpoint('after-send-before-record');
    await ws.ok(['cancel', String(ws.newsletterId)]);
    send.signal('SIGCONT');
    const done = await send.exited;
    expect(done.code, done.stderr).toBe(OK);

    const shown = await ws.show();
    expect(shown.status).toBe('cancelled');
    expect(shown.counts).toMatchObject({ sent: 3, skipped: 2, retry: 0, claimed: 0, unknown: 0 });
    expect(shown.counts.audience).toBe(audience);
    const cancelled = ws.ledger().filter((row) => row.reason === LEDGER_REASON.cancelled);
    expect(cancelled.map((row) => row.address).sort()).toEqual([
      'reader0002@example.net',
      'reader0004@example.net',
    ]);
    expect(claimedOrRetry(ws)).toBe(0);
    // status says what went out before the cancel, not "nothing was sent yet".
    const status = await ws.run(['status']);
    expect(status.stdout).toMatch(
      /#\d+ .* · cancelled [^·]+ · 3 sent before the cancel, 0 failed, 2 skipped, 0 unknown, 15 never sent/,
    );
    expect(status.stdout).not.toMatch(/nothing was sent yet/);
    // Nothing more goes out, whatever runs next.
    expect((await ws.run(['send-due'])).code).toBe(OK);
    expect(sink.messages.filter((m) => m.disposition === 'accepted')).toHaveLength(3);
  });
});

describe('nobody stranded: healing a database an older version left behind', () => {
  it('rows claimed by a run that had already closed become unknown at the next run, which then completes the newsletter', async () => {
    const audience = 12;
    const batch = 4;
    const sink = await resources.sink();
    const ws = await resources.workspace({
      recipients: audience,
      transport: sink.url,
      env: { NEWSLETTER_BATCH: String(batch) },
    });
    // What the old error path left: the batch went to the server, the run row was closed
    // ('error'), and its rows stayed `claimed` for ever.
    const send = ws.start(['send-due'], { NEWSLETTER_FAILPOINTS: 'after-send-before-record' });
    await send.waitForFailpoint('after-send-before-record');
    send.signal('SIGKILL');
    await send.exited;
    const db = new Database(ws.dbPath);
    db.prepare(
      "UPDATE runs SET ended_at = ?, outcome = 'error', error = 'database is locked' WHERE ended_at IS NULL",
    ).run(Date.now());
    db.close();
    expect(ws.ledger().filter((row) => row.state === 'claimed')).toHaveLength(batch);

    const healed = await ws.run(['send-due']);
    expect(healed.code, healed.stderr).toBe(PARTLY_FAILED);
    expect(healed.stderr).toContain(`${batch} deliveries left claimed by runs that had already closed`);
    const shown = await ws.show();
    expect(shown.status).toBe('sent');
    expect(shown.counts).toMatchObject({
      audience,
      sent: audience - batch,
      unknown: batch,
      claimed: 0,
      retry: 0,
    });
    const unknown = ws.ledger().filter((row) => row.state === 'unknown');
    expect(unknown.every((row) => row.reason === LEDGER_REASON.stranded)).toBe(true);
    expect(sink.messages).toHaveLength(audience);
    expect(duplicates(ws, (a) => sink.received(a))).toEqual([]);
  });
});
