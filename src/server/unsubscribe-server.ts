/**
 * `newsletter serve`: the HTTPS end of every List-Unsubscribe header, behind the site's reverse
 * proxy (README, "serve"). node:http and nothing else.
 *
 * | request                                          | answer                                          |
 * | ------------------------------------------------ | ----------------------------------------------- |
 * | POST /u/TOKEN, body `List-Unsubscribe=One-Click` | 200, unsubscribed at once (RFC 8058); again: 200 |
 * |   (a v2 link: the lists of its newsletter; v1: all mail; `scope=all` added: all mail) |    |
 * | GET (or HEAD) /u/TOKEN                           | 200, a page naming the address and the lists,   |
 * |                                                  | with a button for those lists and one for all   |
 * | a token not made with our key, any method        | 400, the same short page for every bad token    |
 * | POST /u/TOKEN without the one-click body         | 400                                             |
 * | any other path                                   | 404; other methods 405                          |
 * | a body over 4 KiB                                | 413                                             |
 * | POST while the database stays busy (30 s)        | 503 with Retry-After: the provider tries again  |
 * | a client that hangs up mid-request               | nothing; logged below error level, no change    |
 * | the test token of a test send or preview         | 200, a page that says it was a test; no change  |
 *
 * GET never unsubscribes: mail scanners and link previews fetch every link in a message, and a
 * newsletter must not unsubscribe its readers by being scanned. The page loads nothing from
 * anywhere (inline style, no script), names the address and lists only for a valid token, and is
 * never cached or sent on as a Referer (the token is a capability). What each POST was (one-click
 * from a provider, the page's list button, its "all mail" button) is recorded as the opt-out's
 * source. The pages' look: ./unsubscribe-page.ts (NEWSLETTER_UNSUBSCRIBE_PAGE).
 *
 * A busy database (SQLite's write lock held past the busy timeout by an import's publish or a
 * backup; PostgreSQL restarting) is waited out (src/store/wait-out-busy.ts): never a 500, and the
 * unsubscribe is recorded once the lock is free, or the client is told to come back (503).
 *
 * The server knows HTTP and tokens; the store call and the logging are handed in by the CLI.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { OptOutPageFacts, OptOutSource } from '../domain/opt-out.js';
import type { UnsubscribeTarget } from '../render/unsubscribe-token.js';
import { verifyUnsubscribeToken } from '../render/unsubscribe-token.js';
import { builtInPage, type PageContent, type PageTemplate } from './unsubscribe-page.js';
import { isTransientDatabaseError } from '../store/transient.js';
import { StillBusyError, waitOutBusy } from '../store/wait-out-busy.js';
import { isClientAbort } from './client-abort.js';

export type ServeEvent =
  | {
      type: 'unsubscribed';
      subscriberId: number;
      newsletterId: number;
      changed: boolean;
      known: boolean;
      source: OptOutSource;
      /** The lists left; empty for all mail. */
      lists: string[];
    }
  | { type: 'bad-token'; method: string }
  /** The inert link of a test send or preview: answered, nothing changed. */
  | { type: 'test-link'; method: string; newsletterId: number }
  /** An unsubscribe met a busy database and will be tried again. */
  | { type: 'database-busy'; subscriberId: number; attempt: number; waitedMs: number; message: string }
  /** Still busy after the whole wait: answered 503, the client retries. */
  | { type: 'still-busy'; subscriberId: number; waitedMs: number; message: string }
  /** The client closed its connection before its request was read (client-abort.ts). */
  | { type: 'client-gone'; method: string }
  | { type: 'failed'; message: string };

/** One opt-out as the server asks for it: leave the newsletter's lists, or all mail. */
export interface OptOutRequest extends UnsubscribeTarget {
  scope: 'newsletter' | 'all';
  source: OptOutSource;
}

export interface UnsubscribeServerOptions {
  /**
   * Records the opt-out (the store's `optOut`); null when no such subscriber exists (any more).
   * `lists` are the lists left (empty: all mail).
   */
  unsubscribe(
    request: OptOutRequest,
  ): Promise<{ changed: boolean; all: boolean; lists: string[]; address: string } | null>;
  /** What the page (GET) of a link shows: the address and the newsletter's lists; null: nobody. */
  describe(target: UnsubscribeTarget): Promise<OptOutPageFacts | null>;
  /** The pages' template (./unsubscribe-page.ts); the built-in one by default. */
  page?: PageTemplate;
  /** The keys a token may be signed with now: the current one, and the previous during a rotation. */
  keys(): readonly string[];
  onEvent?(event: ServeEvent): void;
  /** Largest request body read, in bytes. Default 4 KiB: the one-click body is 26. */
  maxBodyBytes?: number;
  /** How long an unsubscribe waits out a busy database before the answer is 503. Default 30 s. */
  maxBusyWaitMs?: number;
  /** Which errors are a busy database worth waiting out. Default: src/store/transient.ts. */
  isTransient?(error: unknown): boolean;
}

const DEFAULT_MAX_BODY = 4096;
const DEFAULT_MAX_BUSY_WAIT_MS = 30_000;
/** What a 503 asks the client to wait, in seconds: the busy moment has usually passed by then. */
const RETRY_AFTER_SECONDS = '60';
/** What is read (and dropped) of a too-large body before the connection is cut. */
const MAX_DRAIN = 1024 * 1024;
const PATH = /^\/u\/([^/]+)\/?$/;

export function createUnsubscribeServer(options: UnsubscribeServerOptions): Server {
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY;
  const server = createServer(
    {
      // Bounded on every side: a long URL or header, a slow client, a large body.
      maxHeaderSize: 8192,
      headersTimeout: 10_000,
      requestTimeout: 15_000,
    },
    (request, response) => {
      handle(request, response, options, maxBody).catch((error: unknown) => {
        if (isClientAbort(error, request)) {
          // Nobody is left to answer, and nothing was changed: the body never arrived.
          options.onEvent?.({ type: 'client-gone', method: request.method ?? 'GET' });
          response.destroy();
          return;
        }
        options.onEvent?.({
          type: 'failed',
          message: error instanceof Error ? error.message : String(error),
        });
        if (!response.headersSent) send(response, 500, PAGES.failed, options.page);
        else response.destroy();
      });
    },
  );
  server.keepAliveTimeout = 5_000;
  return server;
}

/** Listens, and gives back the URL the server answers on (port 0 becomes the port chosen). */
export async function listen(
  server: Server,
  port: number,
  host: string,
): Promise<{ url: string; port: number }> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return { url: `http://${shownHost}:${address.port}`, port: address.port };
}

/** Stops accepting, ends idle keep-alive connections, and resolves once every request is answered. */
export async function closeServer(server: Server): Promise<void> {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}

async function handle(
  request: IncomingMessage,
  response: ServerResponse,
  options: UnsubscribeServerOptions,
  maxBody: number,
): Promise<void> {
  const method = request.method ?? 'GET';
  let pathname: string;
  try {
    pathname = new URL(request.url ?? '/', 'http://localhost').pathname;
  } catch {
    pathname = '';
  }
  const match = PATH.exec(pathname);
  if (!match) {
    drain(request);
    send(response, 404, PAGES.notFound, options.page);
    return;
  }
  if (method !== 'GET' && method !== 'HEAD' && method !== 'POST') {
    drain(request);
    send(response, 405, PAGES.notAllowed, options.page, { Allow: 'GET, HEAD, POST' });
    return;
  }

  const body = method === 'POST' ? await readBody(request, maxBody) : '';
  if (body === null) {
    send(response, 413, PAGES.tooLarge, options.page, { Connection: 'close' });
    return;
  }
  if (method !== 'POST') drain(request);

  const target = verifyUnsubscribeToken(options.keys(), decode(match[1] ?? ''));
  const page = options.page ?? builtInPage;
  if (!target) {
    options.onEvent?.({ type: 'bad-token', method });
    send(response, 400, PAGES.badToken, page);
    return;
  }
  if (target.kind === 'test') {
    // A test copy was personalised as a real subscriber; its link must never act on them.
    options.onEvent?.({ type: 'test-link', method, newsletterId: target.newsletterId });
    send(response, 200, method === 'POST' ? PAGES.testDone : PAGES.testConfirm, page);
    return;
  }
  if (method !== 'POST') {
    // The page without names if the database cannot say (restarting): its button still works.
    const facts = await options.describe(target).catch((error: unknown) => {
      options.onEvent?.({ type: 'failed', message: `the unsubscribe page: ${messageOf(error)}` });
      return null;
    });
    send(response, 200, confirmPage(target.scope, facts), page);
    return;
  }
  if (!isOneClick(body)) {
    send(response, 400, PAGES.notOneClick, page);
    return;
  }
  const form = formFields(body);
  // A v1 link always meant all mail; a v2 link its newsletter's lists, unless "all mail" was pressed.
  const scope = target.scope === 'all' || form.get('scope') === 'all' ? 'all' : 'newsletter';
  const source: OptOutSource =
    form.get('via') === 'page' ? (scope === 'all' ? 'page-all' : 'page') : 'one-click';
  const optOut: OptOutRequest = {
    subscriberId: target.subscriberId,
    newsletterId: target.newsletterId,
    scope,
    source,
  };
  let result: { changed: boolean; all: boolean; lists: string[]; address: string } | null;
  try {
    const giveUpAt = Date.now() + (options.maxBusyWaitMs ?? DEFAULT_MAX_BUSY_WAIT_MS);
    result = await waitOutBusy(() => options.unsubscribe(optOut), {
      isTransient: options.isTransient ?? isTransientDatabaseError,
      until: () => giveUpAt,
      onBusy: (busy) =>
        options.onEvent?.({
          type: 'database-busy',
          subscriberId: target.subscriberId,
          attempt: busy.attempt,
          waitedMs: Math.round(busy.waitedMs),
          message: messageOf(busy.error),
        }),
    });
  } catch (error) {
    if (!(error instanceof StillBusyError)) throw error;
    options.onEvent?.({
      type: 'still-busy',
      subscriberId: target.subscriberId,
      waitedMs: Math.round(error.waitedMs),
      message: messageOf(error.cause),
    });
    send(response, 503, PAGES.busy, page, { 'Retry-After': RETRY_AFTER_SECONDS });
    return;
  }
  options.onEvent?.({
    type: 'unsubscribed',
    subscriberId: target.subscriberId,
    newsletterId: target.newsletterId,
    changed: result?.changed ?? false,
    // A removed subscriber (or the 0 of a test send) has nobody left to mail: that is done too.
    known: result !== null,
    source,
    lists: result?.lists ?? [],
  });
  send(response, 200, donePage(result), page);
}

/** The page of a valid link: the address, the lists, a button for them and one for all mail. */
function confirmPage(scope: 'lists' | 'all', facts: OptOutPageFacts | null): PageContent {
  const allButton = { label: 'Unsubscribe from all mail from us', fields: { via: 'page', scope: 'all' } };
  if (facts === null)
    return { ...PAGES.confirm, buttons: [{ label: 'Unsubscribe', fields: { via: 'page' } }] };
  if (scope === 'all' || facts.lists.length === 0)
    return {
      title: 'Unsubscribe',
      text: `Do you want ${facts.address} to stop receiving all mail from us?`,
      email: facts.address,
      lists: facts.lists,
      buttons: [allButton],
    };
  return {
    title: 'Unsubscribe',
    text: `${facts.address} receives this email as a member of: ${facts.lists.join(', ')}. Leave ${facts.lists.length === 1 ? 'that list' : 'those lists'}, or stop all mail from us.`,
    email: facts.address,
    lists: facts.lists,
    buttons: [{ label: `Unsubscribe from ${facts.lists.join(', ')}`, fields: { via: 'page' } }, allButton],
  };
}

function donePage(result: { all: boolean; lists: string[]; address: string } | null): PageContent {
  if (result === null) return PAGES.done;
  if (result.all)
    return {
      title: 'Unsubscribed',
      text: `You are unsubscribed: ${result.address} will not receive any mail from us.`,
      email: result.address,
    };
  return {
    title: 'Unsubscribed',
    text: `You are unsubscribed: ${result.address} will not receive mail from ${result.lists.join(', ')} any more.`,
    email: result.address,
    lists: result.lists,
  };
}

/** The form's fields (our own page adds `via` and `scope` to the one-click body). */
function formFields(body: string): URLSearchParams {
  try {
    return new URLSearchParams(body.trim());
  } catch {
    return new URLSearchParams();
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return '';
  }
}

/**
 * RFC 8058's body, `List-Unsubscribe=One-Click`, as application/x-www-form-urlencoded (what mail
 * providers and our own button send) or as a multipart/form-data field.
 */
function isOneClick(body: string): boolean {
  if (new URLSearchParams(body.trim()).get('List-Unsubscribe') === 'One-Click') return true;
  return /name="?List-Unsubscribe"?\s*\r?\n(?:[^\r\n]+\r?\n)*\r?\n\s*One-Click\s*(?:\r?\n|$)/i.test(body);
}

/** The body as text, or null once it passes `max` bytes (the rest is drained, then dropped). */
async function readBody(request: IncomingMessage, max: number): Promise<string | null> {
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > max) {
    drain(request);
    return null;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) {
      drain(request, size);
      return null;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Reads and drops what is left of a request, so that the reply reaches a client still sending;
 * a client sending more than MAX_DRAIN is cut off.
 */
function drain(request: IncomingMessage, already = 0): void {
  let size = already;
  request.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_DRAIN) request.destroy();
  });
  request.resume();
}

type Page = PageContent;

const PAGES = {
  confirm: {
    title: 'Unsubscribe',
    text: 'Do you want to stop receiving these emails?',
  },
  done: { title: 'Unsubscribed', text: 'You are unsubscribed. You will not receive these emails any more.' },
  testConfirm: {
    title: 'Test link',
    text: 'This link comes from a test copy or a preview of a newsletter. Pressing the button changes nothing: nobody is unsubscribed.',
    buttons: [{ label: 'Unsubscribe', fields: {} }],
  },
  testDone: {
    title: 'Test link: nothing changed',
    text: 'This link comes from a test copy or a preview of a newsletter, so nobody was unsubscribed.',
  },
  badToken: {
    title: 'Link not valid',
    text: 'This unsubscribe link is not valid. Check that the whole link was copied from the email.',
  },
  notOneClick: {
    title: 'Not a one-click unsubscribe',
    text: 'This request did not ask to unsubscribe. Open the link and press the button.',
  },
  notFound: { title: 'Not found', text: 'There is nothing here.' },
  notAllowed: { title: 'Method not allowed', text: 'Use GET or POST.' },
  tooLarge: { title: 'Request too large', text: 'The request is too large.' },
  failed: { title: 'Try again later', text: 'Something went wrong on our side. Please try again later.' },
  busy: {
    title: 'Try again in a minute',
    text: 'We could not record your request just now. Please try again in a minute.',
  },
} satisfies Record<string, Page>;

function send(
  response: ServerResponse,
  status: number,
  content: Page,
  page: PageTemplate = builtInPage,
  headers: Record<string, string> = {},
): void {
  // Escaped by the template (./unsubscribe-page.ts): only a verified token's facts are written in.
  const body = Buffer.from(page(content), 'utf8');
  response.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': String(body.length),
    'Cache-Control': 'no-store',
    // Nothing but the inline style may load, the form may only post back here, no framing.
    'Content-Security-Policy':
      "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    'Referrer-Policy': 'no-referrer',
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    ...headers,
  });
  response.end(body);
}
