/**
 * The unsubscribe server's two calls (unsubscribe-server.ts keeps no store of its own) answered by
 * the store's opt-outs: `serve` (src/cli/commands/serve.ts) and the server's tests wire it the
 * same way, so what the tests exercise is what runs.
 */
import type { ListManagement } from '../store/list-store.js';
import type { UnsubscribeServerOptions } from './unsubscribe-server.js';

export function storeOptOuts(
  store: Pick<ListManagement, 'optOut' | 'optOutPage'>,
): Pick<UnsubscribeServerOptions, 'unsubscribe' | 'describe'> {
  return {
    // THE opt-out (src/store/list-store.ts): a v2 link leaves its newsletter's lists, recorded
    // with how it came (one-click, page, page-all).
    unsubscribe: (request) =>
      store.optOut(
        { subscriberId: request.subscriberId },
        request.scope === 'all'
          ? { kind: 'all' }
          : { kind: 'newsletter', newsletterId: request.newsletterId },
        request.source,
        Date.now(),
      ),
    describe: (target) => store.optOutPage(target.subscriberId, target.newsletterId),
  };
}
