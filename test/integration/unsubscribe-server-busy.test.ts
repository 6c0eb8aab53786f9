/**
 * `serve` and a busy database, in process: a real SQLite file, the server on 127.0.0.1 port 0,
 * and a second connection that holds the write lock (BEGIN IMMEDIATE) the way an import's publish
 * or a backup does. A one-click unsubscribe is never answered 500 for that and never lost: it
 * waits the lock out and is recorded, or, if the lock outlasts the wait, the answer is 503 with
 * Retry-After and the provider's retry records it. The lock is released on the server's own
 * `database-busy` event, never after a sleep.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createUnsubscribeToken } from '../../src/render/unsubscribe-token.js';
import { storeOptOuts } from '../../src/server/store-opt-outs.js';
import {
  closeServer,
  createUnsubscribeServer,
  listen,
  type ServeEvent,
  type UnsubscribeServerOptions,
} from '../../src/server/unsubscribe-server.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { seedSubscribers } from '../helpers/store-fixtures.js';

const SECRET = 'the-current-secret-0123456789';
const ADDRESS = 'ann@example.org';
/** The store's busy timeout: each attempt waits this long for the lock before it counts as busy. */
const BUSY_TIMEOUT_MS = 100;

let dir: string;
let store: SqliteStore;
/** Another connection to the same file: the other writer. */
let holder: Database.Database;
let server: Server | null;
let events: ServeEvent[];

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'newsletter-serve-busy-'));
  const file = path.join(dir, 'newsletter.db');
  store = SqliteStore.open(file, { create: true, readonly: false, busyTimeoutMs: BUSY_TIMEOUT_MS });
  await store.migrate();
  await seedSubscribers(store, 'news', [ADDRESS], Date.now());
  holder = new Database(file, { fileMustExist: true });
  server = null;
  events = [];
});

afterEach(async () => {
  if (server) await closeServer(server);
  if (holder.inTransaction) holder.exec('ROLLBACK');
  holder.close();
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

async function start(options: Partial<UnsubscribeServerOptions> = {}): Promise<string> {
  server = createUnsubscribeServer({
    keys: () => [SECRET],
    ...storeOptOuts(store),
    onEvent: (event) => events.push(event),
    ...options,
  });
  return (await listen(server, 0, '127.0.0.1')).url;
}

async function oneClick(base: string): Promise<Response> {
  const subscriber = await store.getSubscriber(ADDRESS);
  const token = createUnsubscribeToken(SECRET, { subscriberId: subscriber!.id, newsletterId: 1 });
  return fetch(`${base}/u/${token}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: 'List-Unsubscribe=One-Click',
  });
}

const statusOf = async () => (await store.getSubscriber(ADDRESS))?.status;

describe('serve with a busy database', () => {
  it('waits out a write lock held past the busy timeout, then records the unsubscribe (200)', async () => {
    holder.exec('BEGIN IMMEDIATE');
    const base = await start({
      onEvent(event) {
        events.push(event);
        // The first attempt has waited its busy timeout and failed: now let the other writer finish.
        if (event.type === 'database-busy' && holder.inTransaction) holder.exec('ROLLBACK');
      },
    });
    const answer = await oneClick(base);
    expect(answer.status).toBe(200);
    expect(await statusOf()).toBe('unsubscribed');
    expect(events.map((event) => event.type)).toEqual(['database-busy', 'unsubscribed']);
    expect(events[0]).toMatchObject({ attempt: 1, message: expect.stringMatching(/locked/) });
  });

  it('answers 503 with Retry-After when the lock outlasts the wait, and the retry is recorded', async () => {
    holder.exec('BEGIN IMMEDIATE');
    const base = await start({ maxBusyWaitMs: 4 * BUSY_TIMEOUT_MS });
    const refused = await oneClick(base);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('60');
    expect(await refused.text()).toContain('Please try again in a minute');
    expect(events.at(-1)).toMatchObject({ type: 'still-busy' });
    expect(events.filter((event) => event.type === 'database-busy').length).toBeGreaterThan(0);
    expect(await statusOf()).toBe('active');

    // The provider comes back once the lock is free.
    holder.exec('ROLLBACK');
    expect((await oneClick(base)).status).toBe(200);
    expect(await statusOf()).toBe('unsubscribed');
  });

  it('does not retry what is not a busy database: 500 at once', async () => {
    let calls = 0;
    const base = await start({
      unsubscribe: async () => {
        calls += 1;
        throw new Error('disk I/O error');
      },
    });
    expect((await oneClick(base)).status).toBe(500);
    expect(calls).toBe(1);
    expect(events.map((event) => event.type)).toEqual(['failed']);
  });
});
