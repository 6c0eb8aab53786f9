/**
 * MJML is compiled exactly once per newsletter per run (DESIGN, "The body"; issue 5): the run that
 * begins a newsletter compiles it once, however many batches it is sent in; a run that continues a
 * newsletter already `sending` compiles nothing (the verified body is stored); a dry run compiles
 * each newsletter it checks once. Counted at mjml itself, through the real build, engine and store.
 */
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config.js';
import type { Millis } from '../../src/domain/types.js';
import { dryRun } from '../../src/engine/dry-run.js';
import { type SendDueDeps, sendDue } from '../../src/engine/send-due.js';
import type { Store } from '../../src/store/store.js';
import { buildBody } from '../../src/render/build.js';
import { preparePersonaliser } from '../../src/render/personalise.js';
import { TEMPLATES } from '../helpers/cli.js';
import { addresses, seedSubscribers, sqliteFactory, type StoreHandle } from '../helpers/store-fixtures.js';
import { engineDeps, recordingTransport } from '../helpers/engine-deps.js';

const compiles = vi.hoisted(() => ({ count: 0 }));

vi.mock('mjml', async (importOriginal) => {
  const actual = await importOriginal<typeof import('mjml')>();
  const counted = ((...args: Parameters<typeof actual.default>) => {
    compiles.count += 1;
    return actual.default(...args);
  }) as typeof actual.default;
  return { ...actual, default: counted };
});

const HOST = 'compile-once-host';
let handle: StoreHandle;
let store: Store;

beforeEach(async () => {
  handle = await sqliteFactory().open();
  store = handle.store;
  await store.setMeta('host_id', HOST);
  await seedSubscribers(store, 'readers', addresses(7), Date.now());
  compiles.count = 0;
});

afterEach(async () => {
  await handle.cleanup();
});

async function due(template: string, now: Millis): Promise<number> {
  const newsletter = await store.createNewsletter(
    {
      subject: 'Hello {{name}}',
      templatePath: path.join(TEMPLATES, template),
      from: 'News <news@example.org>',
      lists: ['readers'],
      scheduledAt: now - 1000,
    },
    now,
  );
  return newsletter.id;
}

function deps(sent: string[], maxMessages: number | null = null): SendDueDeps {
  const config = loadConfig({
    cwd: TEMPLATES,
    env: {
      NEWSLETTER_DATABASE: handle.location,
      NEWSLETTER_RATE: '100000',
      // Small batches: a newsletter goes out in several claims, and still compiles once.
      NEWSLETTER_BATCH: '2',
      NEWSLETTER_SECRET: 'compile-once-secret-0123456789',
      NEWSLETTER_BASE_URL: 'https://example.org/news',
    },
  });
  return engineDeps({
    config,
    store,
    transport: recordingTransport(sent),
    hostId: HOST,
    render: { buildBody, preparePersonaliser },
    maxMessages,
    templatesRoot: TEMPLATES,
  });
}

describe('MJML compiles', () => {
  it('once per newsletter in the run that begins it, whatever the number of batches', async () => {
    await due('welcome.mjml', Date.now());
    await due('welcome.mjml', Date.now());
    const sent: string[] = [];
    const result = await sendDue(deps(sent));
    expect(result.newsletters.filter((n) => n.result === 'sent')).toHaveLength(2);
    // 7 recipients each, in batches of 2: four claims per newsletter.
    expect(sent).toHaveLength(14);
    expect(compiles.count).toBe(2);
  });

  it('not at all in a run that continues a newsletter already sending', async () => {
    await due('welcome.mjml', Date.now());
    const sent: string[] = [];
    await sendDue(deps(sent, 3));
    expect(compiles.count).toBe(1);
    expect((await store.sendingNewsletters()).length).toBe(1);

    compiles.count = 0;
    await sendDue(deps(sent));
    expect(sent).toHaveLength(7);
    expect(compiles.count).toBe(0);
  });

  it('once per newsletter a dry run checks', async () => {
    await due('welcome.mjml', Date.now());
    await due('welcome.mjml', Date.now());
    const counted: string[] = [];
    const options = deps(counted).options;
    const result = await dryRun({
      options,
      store,
      now: Date.now,
      loadRender: async () => ({ buildBody, preparePersonaliser }),
      counting: async () => deps(counted).loadTransport(),
      templatesRoot: () => TEMPLATES,
      newsletterId: null,
      pageSize: 3,
    });
    expect(result.newsletters.map((n) => n.wouldSend)).toEqual([7, 7]);
    expect(compiles.count).toBe(2);
  });
});
