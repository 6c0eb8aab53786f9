/**
 * `newsletter bounces fetch`: reads the bounce mailbox over IMAP (NEWSLETTER_IMAP), for hosted
 * mailboxes where no MTA pipe can be installed; meant for cron. Every message goes through
 * src/bounces/handle-incoming.ts, as with `receive` and `import`, and then leaves the folder:
 *
 * - handled (a report acted on, or one about a delivery already counted) → the done folder
 *   (NEWSLETTER_IMAP_DONE_FOLDER, default newsletter-processed);
 * - anything else (unmatched reports, replies, out-of-office mail) → the unmatched folder
 *   (NEWSLETTER_IMAP_UNMATCHED_FOLDER, default newsletter-unmatched), for a person to look at.
 *
 * Idempotent: a message moves only after it was handled, a batch at a time; a crash in between
 * leaves it in the folder, and handling it again changes nothing. A second run finds nothing.
 * Two runs at once on one host (a slow fetch overlapping the next cron minute) would both read and
 * MOVE the same messages, which IMAP turns into two copies in the done folder: a lock per mailbox
 * (src/host/run-lock.ts, in the private lock folder) lets one run at a time, and a second one
 * exits 6 having done nothing, as a second send-due does. Counts never depended on it.
 * A store failure (busy, unreachable) stops the run with its exit code and leaves the messages
 * not yet handled in place; an IMAP failure is configuration (3) or transient (9). Quiet under
 * cron when nothing changed (promise 5).
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { ConfigError, LockHeldError } from '../../domain/errors.js';
import { privateLockDir } from '../../host/lock-location.js';
import { acquireRunLock } from '../../host/run-lock.js';
import type { IncomingKind } from '../../bounces/handle-incoming.js';
import { unsubscribeKeys } from '../../config.js';
import type { Context } from '../context.js';
import { withStore } from '../context.js';
import { printIncomingSummary } from '../incoming-output.js';

/** Messages fetched and handled before they are moved: what a crash may leave to handle again. */
const BATCH = 50;

/** What goes to the done folder; everything else goes to the unmatched folder. */
const HANDLED: ReadonlySet<IncomingKind> = new Set(['bounce', 'complaint', 'unsubscribe', 'already-counted']);

export async function fetchCommand(context: Context, options: { json?: boolean }): Promise<void> {
  const imap = context.config.imap;
  if (!imap) {
    throw new ConfigError('NEWSLETTER_IMAP is not set: `bounces fetch` reads the bounce mailbox over IMAP.', [
      'Set NEWSLETTER_IMAP=imaps://USER:PASSWORD@imap.example.org/INBOX (percent-encode @ : / in the user and password).',
      'Without IMAP: `bounces receive` from an MTA alias, or `bounces import` of an mbox or Maildir.',
    ]);
  }
  const [{ openImapMailbox }, { handleIncoming }, { emptySummary, addToSummary }] = await Promise.all([
    import('../../import/imap-mailbox.js'),
    import('../../bounces/handle-incoming.js'),
    import('../../bounces/summary.js'),
  ]);
  const lockDir = context.config.lockDir ?? privateLockDir();
  // Named from the mailbox, never from the password: the same user and folder share one lock.
  const key = createHash('sha256').update(`${imap.user}\n${imap.display}`).digest('hex').slice(0, 16);
  let lockLost = false;
  const lock = await acquireRunLock({
    databasePath: path.join(lockDir, `imap-${key}`),
    lockDir,
    private: context.config.lockDir === null,
    lockName: `imap-${key}.lock`,
    staleMs: context.config.lockStaleMs,
    updateMs: Math.max(1000, Math.floor(context.config.lockStaleMs / 12)),
    onCompromised: () => {
      lockLost = true;
    },
  });
  if (!lock) {
    throw new LockHeldError(`Another \`bounces fetch\` is reading ${imap.display}; nothing was fetched.`, [
      'Nothing to do: the running one carries on, and the next cron run reads what is left.',
    ]);
  }
  const summary = emptySummary();
  let failure: unknown = null;
  try {
    await withStore(context, {}, async (store) => {
      const mailbox = await openImapMailbox(imap);
      try {
        const uids = await mailbox.uids();
        for (let start = 0; start < uids.length && failure === null && !lockLost; start += BATCH) {
          const messages = await mailbox.fetch(uids.slice(start, start + BATCH));
          const done: number[] = [];
          const unmatched: number[] = [];
          for (const message of messages) {
            const now = Date.now();
            try {
              const result = await handleIncoming(store, message.raw, {
                keys: unsubscribeKeys(context.config, now),
                softBounceLimit: context.config.softBounceLimit,
                now,
                source: `${imap.mailbox} uid ${message.uid}`,
              });
              addToSummary(summary, result);
              if (message.truncated) {
                summary.problems.push(
                  `${imap.mailbox} uid ${message.uid}: longer than 10 MiB, only its beginning was read`,
                );
              }
              (HANDLED.has(result.kind) ? done : unmatched).push(message.uid);
            } catch (error) {
              // Nothing was decided for this message: it stays, and so does the rest of the folder.
              failure = error;
              break;
            }
          }
          // What was handled leaves the folder even when the store failed on a later message.
          await mailbox.move(done, imap.doneFolder);
          await mailbox.move(unmatched, imap.unmatchedFolder);
        }
      } finally {
        await mailbox.close();
      }
    });
  } finally {
    await lock.release().catch(() => undefined);
  }
  printIncomingSummary(context, summary, options);
  if (failure !== null) throw failure;
}
