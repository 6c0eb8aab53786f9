/**
 * `serve` in process: the server on 127.0.0.1 port 0 over a real SQLite store, every request a
 * real HTTP request (fetch, or node:http for what fetch will not send).
 */
import { request as httpRequest } from 'node:http';
import type { Server } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig, unsubscribeKeys } from '../../src/config.js';
import type { Store } from '../../src/store/store.js';
// v1 links (all mail, as before per-list unsubscribes): test/integration/unsubscribe-per-list.test.ts has v2.
import {
  createAllMailUnsubscribeToken as createUnsubscribeToken,
  createTestUnsubscribeToken,
} from '../../src/render/unsubscribe-token.js';
import { storeOptOuts } from '../../src/server/store-opt-outs.js';
import {
  closeServer,
  createUnsubscribeServer,
  listen,
  type ServeEvent,
} from '../../src/server/unsubscribe-server.js';
import {
  claim,
  registerTestRun,
  type StoreHandle,
  sendingNewsletter,
  sqliteFactory,
} from '../helpers/store-fixtures.js';

const SECRET = 'the-current-secret-0123456789';
const OLD_SECRET = 'the-previous-secret-abcdefghij';
const ONE_CLICK = 'List-Unsubscribe=One-Click';

let handle: StoreHandle;
let store: Store;
let server: Server;
let base: string;
let keys: string[];
let events: ServeEvent[];

async function start(): Promise<void> {
  server = createUnsubscribeServer({
    keys: () => keys,
    ...storeOptOuts(store),
    onEvent: (event) => events.push(event),
  });
  base = (await listen(server, 0, '127.0.0.1')).url;
}

beforeEach(async () => {
  handle = await sqliteFactory().open();
  store = handle.store;
  keys = [SECRET];
  events = [];
  await start();
});

afterEach(async () => {
  await closeServer(server);
  await handle.cleanup();
});

async function subscribers(count: number) {
  const recipients = Array.from({ length: count }, (_, i) => `reader${i + 1}@example.org`);
  const { newsletter } = await sendingNewsletter(store, { list: 'news', recipients, now: Date.now() });
  const ids = await Promise.all(recipients.map(async (address) => (await store.getSubscriber(address))!.id));
  return { newsletter, recipients, ids };
}

const post = (path: string, body: string = ONE_CLICK, type = 'application/x-www-form-urlencoded') =>
  fetch(`${base}${path}`, { method: 'POST', headers: { 'Content-Type': type }, body });

/** A raw request, for what fetch refuses to send (a huge declared length, an odd method). */
function raw(
  method: string,
  path: string,
  body?: Buffer,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks).toString(),
          headers: res.headers,
        }),
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('POST /u/TOKEN (RFC 8058 one-click)', () => {
  it('unsubscribes at once, says so, and a second POST is still 200 and changes nothing', async () => {
    const { newsletter, recipients, ids } = await subscribers(3);
    const token = createUnsubscribeToken(SECRET, { subscriberId: ids[1]!, newsletterId: newsletter.id });

    const first = await post(`/u/${token}`);
    expect(first.status).toBe(200);
    expect(await first.text()).toContain('You are unsubscribed');
    expect((await store.getSubscriber(recipients[1]!))?.status).toBe('unsubscribed');
    expect((await store.getSubscriber(recipients[0]!))?.status).toBe('active');

    const again = await post(`/u/${token}/`);
    expect(again.status).toBe(200);
    expect(events.filter((e) => e.type === 'unsubscribed')).toEqual([
      expect.objectContaining({ subscriberId: ids[1], changed: true, known: true }),
      expect.objectContaining({ subscriberId: ids[1], changed: false, known: true }),
    ]);

    // The ledger's next claim records the address as skipped, not claimed.
    const run = await registerTestRun(store, Date.now());
    const claimed = await claim(store, {
      newsletterId: newsletter.id,
      runId: run.id,
      limit: 10,
      now: Date.now(),
    });
    expect(claimed.claimed.map((c) => c.address)).toEqual([recipients[0], recipients[2]]);
    expect(claimed.skipped).toBe(1);
    const skipped = await store.deliveries(newsletter.id, { state: 'skipped', limit: 10 });
    expect(skipped).toEqual([expect.objectContaining({ address: recipients[1], reason: 'unsubscribed' })]);
  });

  it('accepts the body as multipart/form-data too, as RFC 8058 allows', async () => {
    const { newsletter, recipients, ids } = await subscribers(1);
    const token = createUnsubscribeToken(SECRET, { subscriberId: ids[0]!, newsletterId: newsletter.id });
    const form = new FormData();
    form.set('List-Unsubscribe', 'One-Click');
    const response = await fetch(`${base}/u/${token}`, { method: 'POST', body: form });
    expect(response.status).toBe(200);
    expect((await store.getSubscriber(recipients[0]!))?.status).toBe('unsubscribed');
  });

  it('a POST without the one-click body unsubscribes nobody (400)', async () => {
    const { newsletter, recipients, ids } = await subscribers(1);
    const token = createUnsubscribeToken(SECRET, { subscriberId: ids[0]!, newsletterId: newsletter.id });
    for (const body of ['', 'List-Unsubscribe=Other', 'x=1']) {
      expect((await post(`/u/${token}`, body)).status).toBe(400);
    }
    expect((await store.getSubscriber(recipients[0]!))?.status).toBe('active');
  });

  it('a subscriber removed since (or a test send’s 0) is answered as done', async () => {
    const { newsletter } = await subscribers(1);
    const token = createUnsubscribeToken(SECRET, { subscriberId: 0, newsletterId: newsletter.id });
    expect((await post(`/u/${token}`)).status).toBe(200);
    expect(events.at(-1)).toMatchObject({ type: 'unsubscribed', known: false });
  });
});

describe('the test link of a test send or preview (issue 13)', () => {
  it('GET shows a page that says it is a test; the one-click POST says so and unsubscribes nobody', async () => {
    const { newsletter, recipients } = await subscribers(1);
    const token = createTestUnsubscribeToken(SECRET, newsletter.id);

    const page = await fetch(`${base}/u/${token}`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('test copy or a preview');

    const clicked = await post(`/u/${token}`);
    expect(clicked.status).toBe(200);
    const text = await clicked.text();
    expect(text).toContain('nobody was unsubscribed');
    expect(text).not.toContain('You are unsubscribed');
    expect((await store.getSubscriber(recipients[0]!))?.status).toBe('active');
    expect(events.filter((e) => e.type === 'unsubscribed')).toEqual([]);
    expect(events).toContainEqual({ type: 'test-link', method: 'POST', newsletterId: newsletter.id });
  });
});

describe('GET /u/TOKEN: the confirmation page', () => {
  it('unsubscribes nobody, and its button posts the one-click body back to the same URL', async () => {
    const { newsletter, recipients, ids } = await subscribers(1);
    const token = createUnsubscribeToken(SECRET, { subscriberId: ids[0]!, newsletterId: newsletter.id });
    const page = await fetch(`${base}/u/${token}`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const html = await page.text();
    expect((await store.getSubscriber(recipients[0]!))?.status).toBe('active');

    // No external resource of any kind, nothing that could run, nothing from the request.
    expect(html).not.toMatch(/https?:|<script|<img|<link|src=|url\(/i);
    expect(html).not.toContain(token);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(page.headers.get('referrer-policy')).toBe('no-referrer');
    expect(page.headers.get('cache-control')).toBe('no-store');

    // Submit the form as a browser would: method and fields from the page, action = this URL.
    const form = /<form method="post">([\s\S]*?)<\/form>/.exec(html)?.[1] ?? '';
    const fields = [...form.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]+)">/g)];
    expect(/<form[^>]*action=/.test(html)).toBe(false);
    const body = new URLSearchParams(fields.map((f): [string, string] => [f[1]!, f[2]!])).toString();
    // The one-click body, and what the page adds: this was the page's "all mail" button.
    expect(body).toBe(`${ONE_CLICK}&via=page&scope=all`);
    expect((await post(`/u/${token}`, body)).status).toBe(200);
    expect((await store.getSubscriber(recipients[0]!))?.status).toBe('unsubscribed');
  });

  it('HEAD answers like GET, without a body', async () => {
    const { newsletter, ids } = await subscribers(1);
    const token = createUnsubscribeToken(SECRET, { subscriberId: ids[0]!, newsletterId: newsletter.id });
    const head = await fetch(`${base}/u/${token}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
  });
});

describe('bad tokens and other requests', () => {
  it('every bad or tampered token gets the same 400 and changes nothing', async () => {
    const { newsletter, recipients, ids } = await subscribers(2);
    const good = createUnsubscribeToken(SECRET, { subscriberId: ids[0]!, newsletterId: newsletter.id });
    const [v, sid, nid, mac] = good.split('.') as [string, string, string, string];
    const flipped = mac[5] === 'A' ? 'B' : 'A';
    const bad = [
      `${v}.${ids[1]}.${nid}.${mac}`, // another subscriber, same mac
      `${v}.${sid}.${Number(nid) + 1}.${mac}`, // another newsletter
      `${v}.${sid}.${nid}.${mac.slice(0, 5)}${flipped}${mac.slice(6)}`, // one character of the mac
      createUnsubscribeToken('some-other-secret-0123456789', {
        subscriberId: ids[0]!,
        newsletterId: newsletter.id,
      }),
      `v2.${sid}.${nid}.${mac}`,
      `${v}.${sid}.${nid}`,
      'garbage',
      '%E0%A4%A', // broken percent-encoding
      `${v}.${sid}.${nid}.${mac}${'A'.repeat(500)}`,
    ];
    const bodies = new Set<string>();
    for (const token of bad) {
      for (const method of ['GET', 'POST'] as const) {
        const response = method === 'GET' ? await fetch(`${base}/u/${token}`) : await post(`/u/${token}`);
        expect(response.status, `${method} ${token}`).toBe(400);
        bodies.add(await response.text());
      }
    }
    expect(bodies.size).toBe(1);
    const [body] = [...bodies];
    expect(body).toContain('not valid');
    // One body for all: it cannot tell a tampered token from garbage, nor name anybody.
    expect(body).not.toMatch(/reader|example\.org|v1\./);
    for (const recipient of recipients) expect((await store.getSubscriber(recipient))?.status).toBe('active');
    expect(events.filter((e) => e.type === 'unsubscribed')).toEqual([]);
  });

  it('other paths are 404, other methods 405, a large body 413', async () => {
    const { newsletter, ids } = await subscribers(1);
    const token = createUnsubscribeToken(SECRET, { subscriberId: ids[0]!, newsletterId: newsletter.id });
    for (const path of ['/', '/u/', `/u/${token}/extra`, `/x/u/${token}`, '/favicon.ico', '/u']) {
      expect((await fetch(`${base}${path}`)).status, path).toBe(404);
    }
    const put = await raw('PUT', `/u/${token}`, Buffer.from(ONE_CLICK));
    expect(put.status).toBe(405);
    expect(put.headers.allow).toBe('GET, HEAD, POST');

    const large = await post(`/u/${token}`, `${ONE_CLICK}&pad=${'x'.repeat(10_000)}`);
    expect(large.status).toBe(413);
    // Declared too large: answered before the body is read (this client never sends the rest).
    const declared = await raw('POST', `/u/${token}`, Buffer.from(ONE_CLICK), { 'Content-Length': '100000' });
    expect(declared.status).toBe(413);
    const chunked = await raw('POST', `/u/${token}`, Buffer.alloc(64 * 1024, 'a'), {
      'Transfer-Encoding': 'chunked',
    });
    expect(chunked.status).toBe(413);
    // A URL or header beyond the limits is refused by node:http itself.
    expect((await fetch(`${base}/u/${'a'.repeat(20_000)}`)).status).toBe(431);
  });
});

describe('key rotation', () => {
  it('a link signed with the previous key works while it is accepted, and not after', async () => {
    const { newsletter, recipients, ids } = await subscribers(2);
    const old = createUnsubscribeToken(OLD_SECRET, { subscriberId: ids[0]!, newsletterId: newsletter.id });
    const dir = process.cwd();
    const future = loadConfig({
      cwd: dir,
      env: {
        NEWSLETTER_SECRET: SECRET,
        NEWSLETTER_SECRET_PREVIOUS: OLD_SECRET,
        NEWSLETTER_SECRET_PREVIOUS_UNTIL: '2999-01-01',
      },
      envFile: '/dev/null',
    });
    keys = unsubscribeKeys(future, Date.now());
    expect(keys).toEqual([SECRET, OLD_SECRET]);
    expect((await post(`/u/${old}`)).status).toBe(200);
    expect((await store.getSubscriber(recipients[0]!))?.status).toBe('unsubscribed');

    const past = loadConfig({
      cwd: dir,
      env: {
        NEWSLETTER_SECRET: SECRET,
        NEWSLETTER_SECRET_PREVIOUS: OLD_SECRET,
        NEWSLETTER_SECRET_PREVIOUS_UNTIL: '2020-01-01T00:00Z',
      },
      envFile: '/dev/null',
    });
    keys = unsubscribeKeys(past, Date.now());
    expect(keys).toEqual([SECRET]);
    const expired = createUnsubscribeToken(OLD_SECRET, {
      subscriberId: ids[1]!,
      newsletterId: newsletter.id,
    });
    expect((await post(`/u/${expired}`)).status).toBe(400);
    expect((await store.getSubscriber(recipients[1]!))?.status).toBe('active');
  });
});
