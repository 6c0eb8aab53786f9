/**
 * Every way a run stops claiming (src/engine/stop.ts), in-process: a real SQLite file, the real
 * SMTP transport against a real SMTP server (test/helpers/smtp-sink.ts, with faults), the engine
 * as `send-due` runs it. Promise 2 for each path: when the run has ended, none of its rows is
 * `claimed`; what was never handed over is back in `retry` untouched (attempts unchanged), what
 * may have been is `unknown`, and nobody beyond what the run claimed has a ledger row. The
 * result's `stopReason` says why, which is what the CLI turns into an exit code.
 *
 * Order comes from the engine's failpoint hook (test/helpers/engine-deps.ts, FailpointHolds): the
 * run waits at a named point for a promise the test resolves. The clock is the run's `now`, moved
 * on purpose; no test sleeps to order anything.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import type { Delivery, Millis, Newsletter } from '../../src/domain/types.js';
import { type SendDueResult, sendDue } from '../../src/engine/send-due.js';
import { StopController } from '../../src/engine/stop.js';
import type { Store } from '../../src/store/store.js';
import { engineDeps, FailpointHolds, smtpTransport, testLock } from '../helpers/engine-deps.js';
import { type SinkRule, type SmtpSink, type SmtpSinkOptions, startSmtpSink } from '../helpers/smtp-sink.js';
import { addresses, sendingNewsletter, sqliteFactory, type StoreHandle } from '../helpers/store-fixtures.js';

const HOST_ID = 'stop-paths-host';
const LEASE_MS = 60_000;

let cwd: string;
const cleanups: Array<() => Promise<void>> = [];

beforeAll(() => {
  cwd = mkdtempSync(`${tmpdir()}/newsletter-engine-stop-`);
});

afterAll(() => {
  rmSync(cwd, { recursive: true, force: true });
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Scene {
  store: Store;
  handle: StoreHandle;
  sink: SmtpSink;
  newsletter: Newsletter;
  recipients: string[];
  holds: FailpointHolds;
  stop: StopController;
  /** Moves the run's clock forward. */
  advance(ms: Millis): void;
  /** One send-due run with these deps (the transport is the real SMTP one, to the sink). */
  run(extra?: Partial<Parameters<typeof engineDeps>[0]>): Promise<SendDueResult>;
}

/** A newsletter already `sending` to `recipients` fresh addresses, and a sink with `faults`. */
async function scene(options: {
  recipients: number;
  env?: Record<string, string>;
  faults?: SinkRule[];
  sink?: SmtpSinkOptions;
  credentials?: string;
}): Promise<Scene> {
  const handle = await sqliteFactory().open();
  cleanups.push(() => handle.cleanup());
  const store = handle.store;
  await store.setMeta('host_id', HOST_ID);
  const sink = await startSmtpSink({ ...options.sink, faults: options.faults ?? [] });
  cleanups.push(() => sink.close());
  const recipients = addresses(options.recipients);
  const { newsletter } = await sendingNewsletter(store, { list: 'news', recipients, now: Date.now() });
  const config = loadConfig({
    cwd,
    env: {
      NEWSLETTER_DATABASE: handle.location,
      NEWSLETTER_TRANSPORT: sink.url.replace('smtp://', `smtp://${options.credentials ?? ''}`),
      NEWSLETTER_RATE: '100000',
      NEWSLETTER_RETRY_AFTER: '0s',
      NEWSLETTER_LEASE: `${LEASE_MS / 1000}s`,
      NEWSLETTER_SMTP_CONNECTIONS: '1',
      NEWSLETTER_SMTP_TIMEOUT: '5s',
      NEWSLETTER_SMTP_CA: sink.caPath,
      ...options.env,
    },
    envFile: null,
  });
  let offset = 0;
  const holds = new FailpointHolds();
  const stop = new StopController();
  return {
    store,
    handle,
    sink,
    newsletter,
    recipients,
    holds,
    stop,
    advance: (ms) => {
      offset += ms;
    },
    run: async (extra = {}) =>
      sendDue(
        engineDeps({
          config,
          store,
          transport: await smtpTransport(config),
          hostId: HOST_ID,
          now: () => Date.now() + offset,
          stop,
          at: holds.hook,
          ...extra,
        }),
      ),
  };
}

type Row = Pick<Delivery, 'address' | 'state' | 'attempts'>;

/** The ledger of the scene's newsletter, by address, after checking that nothing is `claimed`. */
async function ledger(s: Scene): Promise<Map<string, Row>> {
  const rows = await s.store.deliveries(s.newsletter.id, { limit: 1000 });
  expect(rows.filter((row) => row.state === 'claimed')).toEqual([]);
  expect((await s.store.counts(s.newsletter.id)).claimed).toBe(0);
  return new Map(
    rows.map((row) => [row.address, { address: row.address, state: row.state, attempts: row.attempts }]),
  );
}

/** Rows of `addresses` as [state, attempts]: attempts 0 on a `retry` row means never tried. */
function states(rows: Map<string, Row>, of: readonly string[]): Array<[string, number] | undefined> {
  return of.map((address) => {
    const row = rows.get(address);
    return row && [row.state, row.attempts];
  });
}

describe('budget', () => {
  it('--max-messages: claims no more than the budget, sends it, and leaves the rest unclaimed', async () => {
    const s = await scene({ recipients: 10, env: { NEWSLETTER_BATCH: '4' } });

    const result = await s.run({ maxMessages: 6 });

    expect(result).toMatchObject({ stopReason: 'budget', stopDetail: 'reached --max-messages' });
    expect(result.counts).toMatchObject({ sent: 6, retry: 0, unknown: 0 });
    const rows = await ledger(s);
    expect(rows.size).toBe(6);
    expect([...rows.values()].every((row) => row.state === 'sent')).toBe(true);
    expect(s.sink.total).toBe(6);
    expect(await s.store.counts(s.newsletter.id)).toMatchObject({ sent: 6, pending: 4 });
  });

  it('--max-seconds: the batch in hand is finished and recorded, then nothing more is claimed', async () => {
    const s = await scene({ recipients: 10, env: { NEWSLETTER_BATCH: '3' } });
    // The first batch takes "a second and a half" of the run's clock.
    s.holds.run('after-record', () => s.advance(1500));

    const result = await s.run({ maxSeconds: 1 });

    expect(result).toMatchObject({ stopReason: 'budget', stopDetail: 'reached --max-seconds' });
    const rows = await ledger(s);
    expect(states(rows, s.recipients.slice(0, 3))).toEqual([
      ['sent', 1],
      ['sent', 1],
      ['sent', 1],
    ]);
    expect(rows.size).toBe(3);
    expect(await s.store.counts(s.newsletter.id)).toMatchObject({ sent: 3, pending: 7 });
  });
});

describe('signal (SIGTERM, SIGINT)', () => {
  it('after a claim: the claimed batch goes back to retry untouched, nothing more is claimed', async () => {
    const s = await scene({ recipients: 9, env: { NEWSLETTER_BATCH: '3' } });
    // What the CLI's SIGTERM handler does, right after the second claim commits.
    s.holds.run('after-claim', () => s.stop.stop('signal', 'received SIGTERM'), 2);

    const result = await s.run();

    expect(result).toMatchObject({ stopReason: 'signal', stopDetail: 'received SIGTERM' });
    const rows = await ledger(s);
    expect(states(rows, s.recipients.slice(0, 6))).toEqual([
      ['sent', 1],
      ['sent', 1],
      ['sent', 1],
      ['retry', 0],
      ['retry', 0],
      ['retry', 0],
    ]);
    expect(rows.size).toBe(6);
    expect(s.sink.total).toBe(3);
    expect(s.sink.received(s.recipients[3] as string)).toBe(0);
  });

  it('while two batches overlap: what was handed over is recorded, the rest of both goes back untouched', async () => {
    const s = await scene({ recipients: 12, env: { NEWSLETTER_BATCH: '3' } });
    // Batch 1 goes alone; batch 3 is claimed while batch 2 is being handed over.
    s.holds.run('after-claim', () => s.stop.stop('signal', 'received SIGTERM'), 3);

    const result = await s.run();

    expect(result.stopReason).toBe('signal');
    const rows = await ledger(s);
    // Three batches claimed, nobody after them.
    expect(rows.size).toBe(9);
    expect(states(rows, s.recipients.slice(0, 3))).toEqual([
      ['sent', 1],
      ['sent', 1],
      ['sent', 1],
    ]);
    const rest = states(rows, s.recipients.slice(3, 9));
    // Handed over: sent, once. Not handed over: retry, never tried.
    for (const row of rest)
      expect([
        ['sent', 1],
        ['retry', 0],
      ]).toContainEqual(row);
    const sent = s.recipients.slice(3, 9).filter((_, i) => rest[i]?.[0] === 'sent');
    expect(s.sink.total).toBe(3 + sent.length);
    for (const address of s.recipients.slice(6, 9)) expect(s.sink.received(address)).toBe(0);
    expect(result.counts.unknown).toBe(0);
  });

  it('while a batch is on the wire: its replies are recorded, then nothing more is claimed', async () => {
    const s = await scene({ recipients: 9, env: { NEWSLETTER_BATCH: '3' } });
    s.holds.run('after-send-before-record', () => s.stop.stop('signal', 'received SIGINT'));

    const result = await s.run();

    expect(result.stopReason).toBe('signal');
    expect(result.counts).toMatchObject({ sent: 3, unknown: 0 });
    const rows = await ledger(s);
    expect(states(rows, s.recipients.slice(0, 3))).toEqual([
      ['sent', 1],
      ['sent', 1],
      ['sent', 1],
    ]);
    expect(rows.size).toBe(3);
  });
});

describe('the server stops the run', () => {
  it.each([
    [421, '4.7.0 too many messages, slow down'],
    [454, '4.7.0 temporary failure, try again later'],
  ])(
    'throttled (%i): that recipient is retried later, the rest of the batch goes back untouched',
    async (code, text) => {
      const s = await scene({
        recipients: 10,
        env: { NEWSLETTER_BATCH: '5' },
        faults: [{ to: addresses(10)[2] as string, fault: { kind: 'rejectRcpt', code, text } }],
      });

      const result = await s.run();

      expect(result.stopReason).toBe('throttled');
      expect(result.stopDetail).toContain(`${code} ${text}`);
      const rows = await ledger(s);
      expect(states(rows, s.recipients.slice(0, 5))).toEqual([
        ['sent', 1],
        ['sent', 1],
        ['retry', 1],
        ['retry', 0],
        ['retry', 0],
      ]);
      expect(rows.size).toBe(5);
      expect(s.sink.total).toBe(2);
    },
  );

  it('withdrawn: messages still waiting for the connection when a reply stops the run are never tried', async () => {
    const s = await scene({
      recipients: 6,
      env: { NEWSLETTER_BATCH: '3' },
      faults: [
        {
          to: addresses(6)[0] as string,
          fault: { kind: 'rejectRcpt', code: 421, text: '4.7.0 too many connections, slow down' },
        },
      ],
    });

    const result = await s.run();

    expect(result.stopReason).toBe('throttled');
    const rows = await ledger(s);
    // One connection: the second and third wait while the first one's envelope waits for its
    // replies; the 421 withdraws them before any of their commands is written.
    expect(states(rows, s.recipients.slice(0, 3))).toEqual([
      ['retry', 1],
      ['retry', 0],
      ['retry', 0],
    ]);
    expect(rows.size).toBe(3);
    expect(s.sink.envelopeCommands.filter((line) => /^RCPT TO/i.test(line))).toHaveLength(1);
    expect(s.sink.messages).toHaveLength(0);
  });

  it('unreachable: a connection dropped before the greeting stops the run; nothing is lost', async () => {
    const s = await scene({
      recipients: 6,
      env: { NEWSLETTER_BATCH: '3' },
      faults: [{ fault: { kind: 'dropConnection' } }],
    });

    const result = await s.run();

    expect(result.stopReason).toBe('unreachable');
    const rows = await ledger(s);
    const batch = states(rows, s.recipients.slice(0, 3));
    expect(batch.every((row) => row?.[0] === 'retry')).toBe(true);
    // The message the failed connection was opened for counts an attempt; the others were withdrawn.
    expect(batch.filter((row) => row?.[1] === 1).length).toBeGreaterThanOrEqual(1);
    expect(rows.size).toBe(3);
    expect(s.sink.envelopeCommands).toEqual([]);
  });

  it('fatal (authentication refused): the claimed rows go back to retry untouched', async () => {
    const s = await scene({
      recipients: 6,
      env: { NEWSLETTER_BATCH: '3' },
      sink: { auth: { user: 'mailer', password: 'the-right-password' } },
      credentials: 'mailer:a-wrong-password@',
    });

    const result = await s.run();

    expect(result.stopReason).toBe('fatal');
    expect(result.stopDetail).toContain('535');
    expect(result.stopDetail).not.toContain('a-wrong-password');
    const rows = await ledger(s);
    expect(states(rows, s.recipients.slice(0, 3))).toEqual([
      ['retry', 0],
      ['retry', 0],
      ['retry', 0],
    ]);
    expect(rows.size).toBe(3);
    expect(s.sink.envelopeCommands).toEqual([]);
  });
});

describe('the run loses its right to send', () => {
  it('lease lost (renewal refused): another run ended this one; it stops before the next claim', async () => {
    const s = await scene({ recipients: 9, env: { NEWSLETTER_BATCH: '3' } });
    const held = s.holds.hold('after-record');
    const running = s.run();
    await held.reached;
    // Another run, after this one's lease had passed, ends it (this one was paused, say).
    const other = await s.handle.connect();
    expect((await other.expireRuns(Date.now() + 2 * LEASE_MS, [])).runs).toBeGreaterThanOrEqual(1);
    // Time for a renewal, well before this run's own view of its lease runs out.
    s.advance(LEASE_MS / 3 + 1000);
    held.release();

    const result = await running;

    expect(result.stopReason).toBe('lease-lost');
    expect(result.stopDetail).toContain('ended by another run');
    const rows = await ledger(s);
    expect(states(rows, s.recipients.slice(0, 3))).toEqual([
      ['sent', 1],
      ['sent', 1],
      ['sent', 1],
    ]);
    expect(rows.size).toBe(3);
    expect(s.sink.total).toBe(3);
  });

  it('lease lost (the check right before the hand-over): a run paused past its lease sends nothing more', async () => {
    const s = await scene({ recipients: 6, env: { NEWSLETTER_BATCH: '3' } });
    // Messages are handed over one after the other, in claim order: hold the first right before
    // its hand-over, and let the lease run out meanwhile.
    const held = s.holds.hold('before-hand-over');
    const running = s.run();
    await held.reached;
    s.advance(LEASE_MS);
    held.release();

    const result = await running;

    expect(result).toMatchObject({
      stopReason: 'lease-lost',
      stopDetail: 'the lease ran out before this message could be sent',
    });
    const rows = await ledger(s);
    expect(states(rows, s.recipients.slice(0, 3))).toEqual([
      ['retry', 0],
      ['retry', 0],
      ['retry', 0],
    ]);
    expect(rows.size).toBe(3);
    expect(s.sink.envelopeCommands).toEqual([]);
  });

  it('lease lost (the fence): outcomes written after another run took over are refused; the rows stay unknown', async () => {
    const s = await scene({ recipients: 6, env: { NEWSLETTER_BATCH: '3' } });
    const held = s.holds.hold('after-send-before-record');
    const running = s.run();
    await held.reached;
    const other = await s.handle.connect();
    expect((await other.expireRuns(Date.now() + 2 * LEASE_MS, [])).unknown).toBe(3);
    held.release();

    const result = await running;

    expect(result.stopReason).toBe('lease-lost');
    expect(result.refusedWrites).toBe(3);
    const rows = await ledger(s);
    expect(states(rows, s.recipients.slice(0, 3))).toEqual([
      ['unknown', 0],
      ['unknown', 0],
      ['unknown', 0],
    ]);
    expect(rows.size).toBe(3);
    expect(s.sink.total).toBe(3);
  });

  it('lock compromised: the claimed batch goes back to retry untouched, nothing more is claimed', async () => {
    const s = await scene({ recipients: 6, env: { NEWSLETTER_BATCH: '3' } });
    const lock = testLock();
    s.holds.run('after-claim', () => lock.compromise(new Error('the lock file was removed')));

    const result = await s.run({ acquireLock: lock.acquireLock });

    expect(result).toMatchObject({ stopReason: 'lock-compromised', stopDetail: 'the lock file was removed' });
    const rows = await ledger(s);
    expect(states(rows, s.recipients.slice(0, 3))).toEqual([
      ['retry', 0],
      ['retry', 0],
      ['retry', 0],
    ]);
    expect(rows.size).toBe(3);
    expect(s.sink.envelopeCommands).toEqual([]);
  });
});

describe('quota', () => {
  it('sends what the hour allows, then stops claiming', async () => {
    const s = await scene({
      recipients: 10,
      env: { NEWSLETTER_BATCH: '3', NEWSLETTER_HOURLY_LIMIT: '4', NEWSLETTER_QUOTA_ACCOUNT: 'stop-paths' },
    });

    const result = await s.run();

    expect(result.stopReason).toBe('quota');
    expect(result.stopDetail).toContain('stop-paths');
    const rows = await ledger(s);
    expect(rows.size).toBe(4);
    expect([...rows.values()].every((row) => row.state === 'sent')).toBe(true);
    expect(s.sink.total).toBe(4);
    expect(await s.store.counts(s.newsletter.id)).toMatchObject({ sent: 4, pending: 6 });
  });
});
