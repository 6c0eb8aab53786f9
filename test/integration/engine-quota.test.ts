/**
 * The engine within the hourly quota (src/engine/quota.ts), on a real SQLite store with a
 * transport that only records: a run reserves before each claim, claims at most what it was
 * granted, gives back what the claim did not use, stops with 'quota' when nothing is granted,
 * and counts every attempt (retries too). The clock is the run's `now`, moved on purpose.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { quotaWindow } from '../../src/domain/quota.js';
import type { Millis, SendOutcome } from '../../src/domain/types.js';
import { type SendDueResult, sendDue } from '../../src/engine/send-due.js';
import type { Store } from '../../src/store/store.js';
import { addresses, sendingNewsletter, sqliteFactory, type StoreHandle } from '../helpers/store-fixtures.js';
import { engineDeps, recordingTransport } from '../helpers/engine-deps.js';

const HOST_ID = 'quota-host';
const ACCOUNT = 'quota-user@smtp.example.org';
/** Mid-hour, so that a run never straddles the turn of the hour by accident. */
const T0: Millis = quotaWindow(Date.now()).start + 20 * 60_000;
const HOUR = 3_600_000;

describe('send-due within the hourly quota (SQLite)', () => {
  let cwd: string;
  let handle: StoreHandle;
  let store: Store;

  beforeAll(() => {
    cwd = mkdtempSync(`${tmpdir()}/newsletter-engine-quota-`);
  });

  afterAll(() => {
    rmSync(cwd, { recursive: true, force: true });
  });

  beforeEach(async () => {
    handle = await sqliteFactory().open();
    store = handle.store;
    await store.setMeta('host_id', HOST_ID);
  });

  afterEach(async () => {
    await handle.cleanup();
  });

  /** One send-due run at `now`; `reply` decides each attempt's outcome (default: 250). */
  async function run(
    env: Record<string, string>,
    now: Millis,
    attempts: string[],
    reply: (to: string, attempt: number) => SendOutcome = () => ({
      kind: 'sent',
      reply: '250 ok',
      queueId: null,
    }),
  ): Promise<SendDueResult> {
    const config = loadConfig({
      cwd,
      env: {
        NEWSLETTER_DATABASE: handle.location,
        NEWSLETTER_TRANSPORT: 'smtp://quota-user:secret-password@smtp.example.org:587',
        NEWSLETTER_RATE: '100000',
        NEWSLETTER_RETRY_AFTER: '0s',
        ...env,
      },
      envFile: null,
    });
    const transport = recordingTransport(attempts, (to) =>
      reply(to, attempts.filter((handed) => handed === to).length),
    );
    return sendDue(
      engineDeps({ config, store, transport, hostId: HOST_ID, hostname: 'quota-machine', now: () => now }),
    );
  }

  it('sends exactly the limit, stops with `quota`, and the next hour carries on', async () => {
    const { newsletter } = await sendingNewsletter(store, {
      list: 'news',
      recipients: addresses(20),
      now: T0,
    });
    const env = { NEWSLETTER_HOURLY_LIMIT: '7', NEWSLETTER_BATCH: '3' };
    const attempts: string[] = [];

    const first = await run(env, T0, attempts);
    expect(first.stopReason).toBe('quota');
    expect(first.stopDetail).toContain(ACCOUNT);
    expect(first.counts.sent).toBe(7);
    expect(attempts).toHaveLength(7);
    expect(await store.quotaUsed(ACCOUNT, quotaWindow(T0).start)).toBe(7);
    expect(await store.counts(newsletter.id)).toMatchObject({ sent: 7, pending: 13, claimed: 0 });
    expect((await store.listRuns(1))[0]).toMatchObject({ outcome: 'quota' });

    // Later in the same hour: nothing more goes out.
    const again = await run(env, T0 + 30 * 60_000, attempts);
    expect(again.stopReason).toBe('quota');
    expect(attempts).toHaveLength(7);

    // The next hour has a fresh quota.
    const next = await run(env, T0 + HOUR, attempts);
    expect(next.stopReason).toBe('quota');
    expect(next.counts.sent).toBe(7);
    expect(new Set(attempts).size).toBe(14);
    expect(await store.quotaUsed(ACCOUNT, quotaWindow(T0 + HOUR).start)).toBe(7);
    expect(await store.counts(newsletter.id)).toMatchObject({ sent: 14, pending: 6 });
  });

  it('counts every attempt: a retry takes from the quota like a first message', async () => {
    const { newsletter } = await sendingNewsletter(store, {
      list: 'news',
      recipients: addresses(20),
      now: T0,
    });
    const greylisted = new Set([
      'reader-001@example.org',
      'reader-002@example.org',
      'reader-003@example.org',
    ]);
    const attempts: string[] = [];
    const result = await run(
      { NEWSLETTER_HOURLY_LIMIT: '10', NEWSLETTER_BATCH: '4' },
      T0,
      attempts,
      (to, n) =>
        greylisted.has(to) && n === 1
          ? { kind: 'retry', reply: '451 4.7.1 greylisted, try again', throttled: false, unreachable: false }
          : { kind: 'sent', reply: '250 ok', queueId: null },
    );
    expect(result.stopReason).toBe('quota');
    // Ten attempts in all: the three greylisted twice (their retries were due at once), seven others once.
    expect(attempts).toHaveLength(10);
    expect(attempts.filter((to) => greylisted.has(to))).toHaveLength(6);
    expect(await store.quotaUsed(ACCOUNT, quotaWindow(T0).start)).toBe(10);
    expect(await store.counts(newsletter.id)).toMatchObject({ sent: 7, retry: 0, pending: 13 });
  });

  it('gives back what a claim did not use: skipped recipients and an empty last claim cost nothing', async () => {
    const { newsletter } = await sendingNewsletter(store, {
      list: 'news',
      recipients: addresses(5),
      now: T0,
    });
    await store.unsubscribe('reader-002@example.org', T0);
    await store.suppress('reader-004@example.org', 'operator', 'operator', T0);
    const attempts: string[] = [];
    const result = await run({ NEWSLETTER_HOURLY_LIMIT: '100', NEWSLETTER_BATCH: '20' }, T0, attempts);
    expect(result.stopReason).toBeNull();
    expect(result.newsletters).toEqual([expect.objectContaining({ id: newsletter.id, result: 'sent' })]);
    expect(attempts).toHaveLength(3);
    expect(await store.quotaUsed(ACCOUNT, quotaWindow(T0).start)).toBe(3);
  });

  it('a newsletter that the last of the quota finishes is still completed', async () => {
    const { newsletter } = await sendingNewsletter(store, {
      list: 'news',
      recipients: addresses(6),
      now: T0,
    });
    const attempts: string[] = [];
    const result = await run({ NEWSLETTER_HOURLY_LIMIT: '6', NEWSLETTER_BATCH: '3' }, T0, attempts);
    expect(attempts).toHaveLength(6);
    expect(result.stopReason).toBe('quota');
    expect(result.newsletters).toEqual([expect.objectContaining({ id: newsletter.id, result: 'sent' })]);
    expect((await store.getNewsletter(newsletter.id))?.status).toBe('sent');
  });

  it('NEWSLETTER_QUOTA_ACCOUNT names the account; without a limit nothing is counted', async () => {
    await sendingNewsletter(store, { list: 'news', recipients: addresses(8), now: T0 });
    const attempts: string[] = [];
    await run(
      { NEWSLETTER_HOURLY_LIMIT: '2', NEWSLETTER_QUOTA_ACCOUNT: 'shared-login', NEWSLETTER_BATCH: '5' },
      T0,
      attempts,
    );
    expect(attempts).toHaveLength(2);
    expect(await store.quotaUsed('shared-login', quotaWindow(T0).start)).toBe(2);
    expect(await store.quotaUsed(ACCOUNT, quotaWindow(T0).start)).toBe(0);

    const unlimited = await run({}, T0 + 1000, attempts);
    expect(unlimited.stopReason).toBeNull();
    expect(attempts).toHaveLength(8);
    expect(await store.quotaUsed('shared-login', quotaWindow(T0).start)).toBe(2);
  });
});
