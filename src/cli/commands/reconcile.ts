import { normaliseAddress } from '../../domain/address.js';
import { InputError, UsageError } from '../../domain/errors.js';
import type { ReconcileResult } from '../../domain/reconcile.js';
import type { Context } from '../context.js';
import { withStore } from '../context.js';
import { printJson, println, warn } from '../output.js';
import { parseId, requireNewsletter } from './newsletters.js';

/**
 * An operator settles the deliveries whose fate nobody recorded: `unknown` rows, and `claimed` rows
 * of a run that has ended (stranded). --mark-sent when the server's logs show the Message-ID
 * delivered, --resend to make them due again (same Message-ID). Without addresses, every such row
 * of the newsletter. A row a live run holds is never touched. On a cancelled newsletter --resend
 * is refused and changes nothing; --mark-sent also writes its `retry` rows `skipped`. The rules:
 * src/domain/reconcile.ts.
 */
export async function reconcileCommand(
  context: Context,
  id: string,
  emails: string[],
  options: { markSent?: boolean; resend?: boolean; json?: boolean },
): Promise<void> {
  const newsletterId = parseId(id);
  if (!options.markSent === !options.resend)
    throw new UsageError('Give exactly one of --mark-sent or --resend.');
  const addresses = emails.map((email) => {
    const result = normaliseAddress(email);
    if (!result.ok) throw new InputError(`"${email}" is not a usable address: ${result.problem}`);
    return result.address;
  });
  const result = await withStore(context, {}, async (store) => {
    await requireNewsletter(store, newsletterId);
    return store.reconcile(
      newsletterId,
      options.markSent ? 'mark-sent' : 'resend',
      addresses.length ? addresses : null,
      Date.now(),
    );
  });
  if (options.json) printJson(result);
  else report(newsletterId, result, options.markSent === true);
  if (result.refused === 'cancelled') {
    throw new InputError(
      `Newsletter ${newsletterId} is cancelled, and a cancelled newsletter sends nothing: --resend is refused. ` +
        'Its unknown and stranded deliveries were left as they were.',
      [
        `Record the ones the mail server's log shows delivered with \`newsletter reconcile ${newsletterId} --mark-sent EMAIL…\`.`,
      ],
    );
  }
}

function report(newsletterId: number, result: ReconcileResult, markSent: boolean): void {
  if (result.refused === null) {
    const stranded =
      result.stranded > 0 ? ` (${result.stranded} of them claimed by a run that had ended)` : '';
    println(
      `${result.changed} unknown deliveries${stranded} ${markSent ? 'marked sent' : 'will be resent by the next send-due run'}.`,
    );
  }
  if (result.cancelledRetries > 0) {
    println(
      `${result.cancelledRetries} deliveries waiting for a retry of the cancelled newsletter ${newsletterId} are now skipped (cancelled).`,
    );
  }
  const live = new Set(result.claimedByLiveRun);
  for (const address of result.notUnknown) {
    warn(
      live.has(address)
        ? `${address} is being sent by a live run of newsletter ${newsletterId}; left for that run to record.`
        : `${address} was not unknown in newsletter ${newsletterId}; left as it was.`,
    );
  }
}
