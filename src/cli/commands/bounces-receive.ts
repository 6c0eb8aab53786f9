/**
 * `newsletter bounces receive`: one message on stdin, as an MTA hands it to a pipe:
 *
 *   bounces: "|newsletter --env-file /etc/newsletter/site.env bounces receive"
 *
 * It goes through src/bounces/handle-incoming.ts like every message `import` and `fetch` read.
 * The envelope recipient (where the VERP token is) comes from --recipient, else from what the MTA
 * sets for a pipe: Postfix's ORIGINAL_RECIPIENT, RECIPIENT and EXTENSION, Exim's
 * LOCAL_PART_SUFFIX (Postfix also prepends X-Original-To and Delivered-To, read as well).
 *
 * Exit codes an MTA understands: 0 when the message was handled (unmatched and not-a-report
 * included: the MTA may drop it), 75 (EX_TEMPFAIL) for anything else, so the MTA keeps the
 * message and tries again later: the database busy or out of reach, a bad configuration, a bug.
 * main.ts turns every failure of this command into 75; a report is never lost.
 */
import { unsubscribeKeys } from '../../config.js';
import type { Context } from '../context.js';
import { withStore } from '../context.js';
import { printIncomingSummary } from '../incoming-output.js';

/** Beyond this, the rest of the message is not read: a report's status part is at its start. */
const MAX_MESSAGE_BYTES = 10 * 1024 * 1024;

/** What an MTA's pipe delivery tells the command about the recipient, in this order. */
const RECIPIENT_VARIABLES = ['ORIGINAL_RECIPIENT', 'RECIPIENT', 'EXTENSION', 'LOCAL_PART_SUFFIX'] as const;

export async function receiveCommand(
  context: Context,
  options: { recipient?: string; json?: boolean },
): Promise<void> {
  const [{ handleIncoming }, { emptySummary, addToSummary }] = await Promise.all([
    import('../../bounces/handle-incoming.js'),
    import('../../bounces/summary.js'),
  ]);
  const { raw, truncated } = await readStdin(MAX_MESSAGE_BYTES);
  const summary = emptySummary();
  const envelope = [options.recipient, ...RECIPIENT_VARIABLES.map((name) => process.env[name])]
    .filter((value): value is string => typeof value === 'string' && value !== '')
    .join(' ');
  await withStore(context, {}, async (store) => {
    const now = Date.now();
    const result = await handleIncoming(store, raw, {
      keys: unsubscribeKeys(context.config, now),
      softBounceLimit: context.config.softBounceLimit,
      now,
      envelopeRecipient: envelope === '' ? undefined : envelope,
      source: 'stdin',
    });
    if (truncated) result.problems.push(`stdin: longer than ${MAX_MESSAGE_BYTES} bytes; read its start only`);
    addToSummary(summary, result);
  });
  printIncomingSummary(context, summary, options);
}

async function readStdin(limit: number): Promise<{ raw: Buffer; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  let truncated = false;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    if (size >= limit) {
      truncated = true;
      continue; // drained, so the MTA's write does not fail with EPIPE
    }
    const room = limit - size;
    chunks.push(chunk.length > room ? chunk.subarray(0, room) : chunk);
    if (chunk.length > room) truncated = true;
    size += Math.min(chunk.length, room);
  }
  return { raw: Buffer.concat(chunks), truncated };
}
