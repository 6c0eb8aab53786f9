/**
 * `send-due` gives SQLite's ledger a thread of its own only when the send is fast enough for the
 * main thread's time to matter (src/cli/commands/send-due.ts): a cron run at the default rate
 * must not pay the thread's start every minute. What each side does is pinned elsewhere
 * (test/integration/sqlite-ledger-thread.test.ts for the thread, sqlite-durability for the store's
 * own connection); this pins which runs get which.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { wantsLedgerThread } from '../../src/cli/commands/send-due.js';
import { loadConfig } from '../../src/config.js';

describe('which send-due runs write the ledger on its own thread', () => {
  it('not at the default rate of 10 a second, nor at a few hundred', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'newsletter-config-'));
    try {
      const defaults = loadConfig({ cwd: empty, env: {} });
      expect(defaults.rate).toBe(10);
      expect(wantsLedgerThread(defaults)).toBe(false);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
    expect(wantsLedgerThread({ rate: 999 })).toBe(false);
  });

  it('from 1,000 a second up, and when the rate is as good as unlimited', () => {
    expect(wantsLedgerThread({ rate: 1000 })).toBe(true);
    expect(wantsLedgerThread({ rate: 1_000_000 })).toBe(true);
  });
});
