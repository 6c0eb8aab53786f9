import { normaliseAddress } from '../../domain/address.js';
import { InputError, UsageError } from '../../domain/errors.js';
import type { Context } from '../context.js';
import { withStore } from '../context.js';
import { printJson, println, warn } from '../output.js';
import { parseId, requireNewsletter } from './newsletters.js';

/**
 * An operator settles `unknown` deliveries: --mark-sent when the server's logs show the
 * Message-ID delivered, --resend to make them due again (same Message-ID). Only `unknown` rows
 * change; without addresses, every unknown row of the newsletter.
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
  if (options.json) {
    printJson(result);
    return;
  }
  println(
    `${result.changed} unknown deliveries ${options.markSent ? 'marked sent' : 'will be resent by the next send-due run'}.`,
  );
  for (const address of result.notUnknown)
    warn(`${address} was not unknown in newsletter ${newsletterId}; left as it was.`);
}
