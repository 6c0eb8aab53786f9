/**
 * `newsletter bounces import PATH…`: reads the bounce mailbox from files (an mbox, a Maildir,
 * .eml files) and hands every message to src/bounces/handle-incoming.ts, the one place that
 * decides whether a report (a DSN, an ARF complaint, mail to an unsubscribe address) is about
 * mail we sent and acts on it. Importing the same mailbox again changes nothing (counted once
 * per delivery); a cron line may import a growing mbox every hour.
 *
 * A store failure stops the import with its exit code (nothing after it is lost: importing again
 * picks up where it stopped, already counted reports change nothing).
 */
import { unsubscribeKeys } from '../../config.js';
import type { Context } from '../context.js';
import { withStore } from '../context.js';
import { printIncomingSummary } from '../incoming-output.js';

export async function importCommand(
  context: Context,
  paths: string[],
  options: { json?: boolean },
): Promise<void> {
  const [{ readMailbox }, { handleIncoming }, { emptySummary, addToSummary }] = await Promise.all([
    import('../../import/mailbox.js'),
    import('../../bounces/handle-incoming.js'),
    import('../../bounces/summary.js'),
  ]);
  const summary = emptySummary();
  await withStore(context, {}, async (store) => {
    for (const target of paths) {
      for await (const message of readMailbox(target)) {
        const now = Date.now();
        const result = await handleIncoming(store, message.raw, {
          keys: unsubscribeKeys(context.config, now),
          softBounceLimit: context.config.softBounceLimit,
          now,
          source: message.source,
        });
        if (message.truncated) {
          result.problems.push(`${message.source}: longer than 10 MiB, only its beginning was read`);
        }
        addToSummary(summary, result);
      }
    }
  });
  printIncomingSummary(context, summary, options);
}
