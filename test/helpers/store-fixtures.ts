/**
 * Stores for the contract suite, and the few steps every store test repeats (seed a list, create
 * and start a newsletter, register a run, claim). Each factory gives every test its own empty,
 * migrated database, as graphile-worker's test helpers do, so tests never see each other's rows.
 *
 * A PostgreSQL factory goes into `makeStoreFactories()` beside the SQLite one; the contract suite
 * loops over the list and needs nothing else from it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { normaliseAddress } from '../../src/domain/address.js';
import { type MessageIdKey, messageIdOf } from '../../src/domain/message-id.js';
import type { ClaimedDelivery, Millis, Newsletter, RunInfo, VerifiedBody } from '../../src/domain/types.js';
import type { ClaimResult, RegisteredRun } from '../../src/engine/store.js';
import type { ImportSummary, Store, SubscriberInput } from '../../src/store/store.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';

export interface StoreHandle {
  store: Store;
  /** Where the database is: a SQLite file path, or a PostgreSQL URL. */
  location: string;
  /** Another, independent connection to the same database (closed by `cleanup`). */
  connect(): Promise<Store>;
  /** Closes every connection and removes the database. */
  cleanup(): Promise<void>;
}

export interface StoreFactory {
  name: Store['kind'];
  open(): Promise<StoreHandle>;
}

export const BUSY_TIMEOUT_MS = 5000;

export function sqliteFactory(): StoreFactory {
  return {
    name: 'sqlite',
    async open() {
      const dir = await mkdtemp(join(tmpdir(), 'newsletter-store-'));
      const file = join(dir, 'newsletter.db');
      const store = SqliteStore.open(file, { create: true, readonly: false, busyTimeoutMs: BUSY_TIMEOUT_MS });
      await store.migrate();
      const others: Store[] = [];
      return {
        store,
        location: file,
        async connect() {
          const other = SqliteStore.open(file, {
            create: false,
            readonly: false,
            busyTimeoutMs: BUSY_TIMEOUT_MS,
          });
          others.push(other);
          return other;
        },
        async cleanup() {
          for (const other of others) await other.close().catch(() => undefined);
          await store.close().catch(() => undefined);
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
  };
}

export function makeStoreFactories(): StoreFactory[] {
  return [sqliteFactory()];
}

// ---- subscribers ------------------------------------------------------------------------------

/** A subscriber as the CSV reader would hand it over: `email` as written, `address` normalised. */
export function subscriber(raw: string, name = '', fields: Record<string, string> = {}): SubscriberInput {
  const result = normaliseAddress(raw);
  if (!result.ok) throw new Error(`test address ${raw}: ${result.problem}`);
  return { email: result.email, address: result.address, name, fields };
}

/** `count` distinct addresses, `prefix-001@example.org`…, in the order they would be imported. */
export function addresses(count: number, prefix = 'reader'): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}-${String(i + 1).padStart(3, '0')}@example.org`);
}

export async function* asyncRows<T>(rows: Iterable<T>): AsyncGenerator<T> {
  for (const row of rows) {
    // A real CSV stream yields between rows: let other work run, as it would then.
    await Promise.resolve();
    yield row;
  }
}

/** Imports the addresses (or inputs) into `list` through `importSubscribers`, as the CLI does. */
export async function seedSubscribers(
  store: Store,
  list: string,
  rows: readonly (string | SubscriberInput)[],
  now: Millis,
): Promise<ImportSummary> {
  const inputs = rows.map((row) => (typeof row === 'string' ? subscriber(row) : row));
  const fieldNames = [...new Set(inputs.flatMap((input) => Object.keys(input.fields)))];
  return store.importSubscribers(asyncRows(inputs), { list, fieldNames, now });
}

// ---- newsletters ------------------------------------------------------------------------------

/**
 * A newsletter as the store hands one out: scheduled, not built, nothing started. Each test says
 * what it looks at (subject, template, From, lists…) and leaves the rest.
 */
export function newsletterFixture(overrides: Partial<Newsletter> = {}): Newsletter {
  return {
    id: 1,
    subject: 'Hello',
    templatePath: '/templates/welcome.mjml',
    from: null,
    lists: ['readers'],
    status: 'scheduled',
    scheduledAt: 0,
    failureReason: null,
    body: null,
    createdAt: 0,
    startedAt: null,
    finishedAt: null,
    startedByRun: null,
    prunedAt: null,
    updatedAt: 0,
    template: null,
    scheduledZone: null,
    segment: null,
    ...overrides,
  };
}

export function fakeBody(overrides: Partial<VerifiedBody> = {}): VerifiedBody {
  return {
    subject: 'Hello {{name}}',
    html: '<html><body><p>Hello {{name}}</p><a href="{{unsubscribe_url}}">unsubscribe</a></body></html>',
    text: 'Hello {{name}}\n\nUnsubscribe: {{unsubscribe_url}}\n',
    from: 'News <news@example.org>',
    fields: ['name', 'unsubscribe_url'],
    templateHash: 'sha256:0000000000000000000000000000000000000000000000000000000000000000',
    compiledAt: 0,
    ...overrides,
  };
}

/** A newsletter to `lists`, scheduled a minute before `now` (so it is due). */
export async function createScheduledNewsletter(
  store: Store,
  lists: string[],
  now: Millis,
): Promise<Newsletter> {
  return store.createNewsletter(
    { subject: 'Hello {{name}}', templatePath: 'hello.mjml', from: null, lists, scheduledAt: now - 60_000 },
    now,
  );
}

export const LEASE_MS = 60_000;

export async function registerTestRun(
  store: Store,
  now: Millis,
  options: { leaseMs?: number; pid?: number; hostId?: string } = {},
): Promise<RegisteredRun> {
  return store.registerRun({
    hostId: options.hostId ?? 'test-host',
    hostname: 'test',
    pid: options.pid ?? process.pid,
    pidScope: 'test-boot test-pid-namespace',
    now,
    leaseMs: options.leaseMs ?? LEASE_MS,
  });
}

/**
 * A list of `count` fresh subscribers and a newsletter to it already in `sending` (begun by a
 * run registered at `now`), the state in which claims start.
 */
export async function sendingNewsletter(
  store: Store,
  options: { list: string; recipients: readonly (string | SubscriberInput)[]; now: Millis },
): Promise<{ newsletter: Newsletter; starter: RunInfo }> {
  await seedSubscribers(store, options.list, options.recipients, options.now);
  const created = await createScheduledNewsletter(store, [options.list], options.now);
  const starter = await registerTestRun(store, options.now);
  if (!(await store.beginSending(created, fakeBody({ compiledAt: options.now }), starter.id, options.now))) {
    throw new Error('beginSending refused a newly scheduled newsletter');
  }
  return { newsletter: (await store.getNewsletter(created.id)) as Newsletter, starter };
}

/** The key the test claims make Message-IDs with. */
export const TEST_MESSAGE_IDS: MessageIdKey = { secret: 'test-secret', fromDomain: 'news.example.org' };

export function testMessageId(newsletterId: number): (address: string) => string {
  return (address) => messageIdOf(TEST_MESSAGE_IDS, newsletterId, address);
}

export async function claim(
  store: Store,
  request: { newsletterId: number; runId: number; limit: number; now: Millis; afterSubscriberId?: number },
): Promise<ClaimResult> {
  return store.claimBatch({
    newsletterId: request.newsletterId,
    runId: request.runId,
    limit: request.limit,
    now: request.now,
    afterSubscriberId: request.afterSubscriberId ?? 0,
    messageIds: TEST_MESSAGE_IDS,
  });
}

/** The write a run makes after a 250 reply, as decideWrite would build it. */
export function sentWrite(delivery: Pick<ClaimedDelivery, 'deliveryId' | 'attempts'>) {
  return {
    deliveryId: delivery.deliveryId,
    state: 'sent' as const,
    attempts: delivery.attempts + 1,
    nextAttemptAt: null,
    smtpReply: '250 2.0.0 Ok: queued as TEST',
    queueId: 'TEST',
    suppressAddress: null,
  };
}
