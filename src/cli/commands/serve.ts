/**
 * `newsletter serve [--port P] [--host H]`: answers the unsubscribe links of every message
 * (src/server/unsubscribe-server.ts) until SIGTERM or SIGINT. Meant to run under systemd behind
 * the site's reverse proxy, which terminates TLS and forwards /u/ (README, "serve").
 */
import { unsubscribeKeys } from '../../config.js';
import { ConfigError, UsageError } from '../../domain/errors.js';
import { closeServer, createUnsubscribeServer, listen } from '../../server/unsubscribe-server.js';
import { storeOptOuts } from '../../server/store-opt-outs.js';
import { loadPageTemplate } from '../../server/unsubscribe-page.js';
import type { Context } from '../context.js';
import { openStore } from '../context.js';
import { createLogger } from '../log.js';
import { println } from '../output.js';

interface ServeOptions {
  port: string;
  host: string;
}

export async function serveCommand(context: Context, options: ServeOptions): Promise<void> {
  const port = Number(options.port);
  if (!/^\d+$/.test(options.port) || port > 65_535) {
    throw new UsageError(`--port "${options.port}" is not a port number (0 to 65535; 0 picks a free one).`);
  }
  const { config } = context;
  if (!config.secret) {
    throw new ConfigError('NEWSLETTER_SECRET is not set: serve needs it to check unsubscribe tokens.', [
      'Use the same NEWSLETTER_SECRET as send-due, or no link in any sent message will work.',
    ]);
  }
  // Read and checked before listening: a broken template is a start-up error, not a broken page.
  const page = loadPageTemplate(process.env.NEWSLETTER_UNSUBSCRIBE_PAGE);
  const log = createLogger(context.global);
  const store = await openStore(context);
  const server = createUnsubscribeServer({
    keys: () => unsubscribeKeys(config, Date.now()),
    ...storeOptOuts(store),
    page,
    onEvent(event) {
      switch (event.type) {
        case 'unsubscribed':
          log.log(
            'info',
            'unsubscribed',
            event.known
              ? `subscriber ${event.subscriberId} ${event.changed ? 'unsubscribed' : 'was already unsubscribed'} from ${event.lists.length > 0 ? `lists ${event.lists.join(', ')}` : 'all mail'} (newsletter ${event.newsletterId}, ${event.source})`
              : `subscriber ${event.subscriberId} does not exist; nothing to do (newsletter ${event.newsletterId})`,
            {
              subscriberId: event.subscriberId,
              newsletterId: event.newsletterId,
              changed: event.changed,
              source: event.source,
              lists: event.lists,
            },
          );
          return;
        case 'test-link':
          log.log(
            'info',
            'test-link',
            `a ${event.method} on the test link of newsletter ${event.newsletterId}; nothing changed`,
            { newsletterId: event.newsletterId },
          );
          return;
        case 'bad-token':
          log.log('debug', 'bad-token', `a ${event.method} request with a token that is not ours`);
          return;
        // Any client can hang up mid-request, as often as it likes: not an error of ours.
        case 'client-gone':
          log.log('debug', 'client-gone', `a client closed its ${event.method} request before it was read`);
          return;
        case 'failed':
          log.log('error', 'request-failed', `a request failed: ${event.message}`);
          return;
        // A busy moment is normal (an import publishing); only giving up needs a person.
        case 'database-busy':
          log.log(
            'info',
            'database-busy',
            `the database is busy; the unsubscribe of subscriber ${event.subscriberId} waits (attempt ${event.attempt}, ${event.waitedMs} ms so far): ${event.message}`,
            { subscriberId: event.subscriberId, attempt: event.attempt, waitedMs: event.waitedMs },
          );
          return;
        case 'still-busy':
          log.log(
            'warn',
            'unsubscribe-deferred',
            `the database stayed busy for ${event.waitedMs} ms; answered 503 so that the client retries the unsubscribe of subscriber ${event.subscriberId}: ${event.message}`,
            { subscriberId: event.subscriberId, waitedMs: event.waitedMs },
          );
          return;
      }
    },
  });

  let address: { url: string };
  try {
    address = await listen(server, port, options.host);
  } catch (error) {
    await store.close();
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigError(`Cannot listen on ${options.host}:${options.port} (${code ?? String(error)}).`, [
      code === 'EADDRINUSE'
        ? 'Another program uses this port: choose another with --port.'
        : 'Check --host (an address of this machine, e.g. 127.0.0.1) and --port.',
    ]);
  }
  // One line, always: a service manager's log shows where it listens (and tests read the port).
  println(`newsletter serve: listening on ${address.url}/u/ (stop with SIGTERM)`);

  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      resolve();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  await closeServer(server);
  await store.close();
}
