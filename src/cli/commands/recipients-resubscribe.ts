/**
 * `recipients resubscribe EMAIL --reason "…" [--list L]`: clears an opt-out the person has since
 * taken back (by mail, on the phone). Without --list: all of them (all mail, every list, and the
 * suppression `recipients remove` left); with --list: those lists only. Who ($SUDO_USER, $USER)
 * and why are recorded in the events table. A bounce or an operator's suppression is not an
 * opt-out: refused, with what to do (`suppress remove`); an erased address is refused for good.
 */
import { userInfo } from 'node:os';
import { InputError } from '../../domain/errors.js';
import { operatorName, resubscribeRefusal } from '../../domain/opt-out.js';
import type { Context } from '../context.js';
import { withStore } from '../context.js';
import { printJson, println, warn } from '../output.js';
import { parseAddress, requireLists, validateListName } from './recipients.js';

export async function resubscribeCommand(
  context: Context,
  email: string,
  options: { reason?: string; list?: string[]; json?: boolean },
): Promise<void> {
  const { address } = parseAddress(email);
  const reason = (options.reason ?? '').trim();
  if (reason === '' || /[\r\n\0]/.test(reason) || reason.length > 500)
    throw new InputError(
      '--reason must say, in one line (at most 500 characters), why this person is resubscribed.',
      ['e.g. --reason "asked by phone on 2026-03-01, ticket 4411"'],
    );
  const lists = options.list ?? null;
  for (const list of lists ?? []) validateListName(list);
  const by = operatorName(process.env, () => {
    try {
      return userInfo().username;
    } catch {
      return null;
    }
  });
  const result = await withStore(context, {}, async (store) => {
    if ((await store.forgottenAddresses()).has(address))
      throw new InputError(`${address} was erased with \`recipients forget\`; it cannot be resubscribed.`, [
        'An erased address is kept out for good; if the person asks to join again, that is a new consent: keep it outside this database.',
      ]);
    if (lists !== null) await requireLists(store, lists);
    return store.resubscribe(address, lists, by, reason, Date.now());
  });
  if (!result.ok && result.reason === 'no-subscriber')
    throw new InputError(`There is no subscriber ${address}.`);
  if (!result.ok && result.reason === 'suppressed') {
    const refusal = resubscribeRefusal(address, result.suppression);
    throw new InputError(refusal.message, refusal.hints);
  }
  if (!result.ok) throw new Error('unreachable');
  if (options.json) {
    printJson({
      address,
      by,
      reason,
      clearedAll: result.clearedAll,
      clearedLists: result.clearedLists,
      stillUnsubscribedAll: result.stillUnsubscribedAll,
    });
    return;
  }
  const cleared = [
    ...(result.clearedAll ? ['all mail'] : []),
    ...result.clearedLists.map((list) => `list "${list}"`),
  ];
  println(
    cleared.length > 0
      ? `Resubscribed ${address} to ${cleared.join(', ')} (recorded: by ${by}, "${reason}").`
      : `${address} had no opt-out to clear${lists ? ` on ${lists.map((l) => `"${l}"`).join(', ')}` : ''}; recorded anyway (by ${by}).`,
  );
  if (result.stillUnsubscribedAll)
    warn(`${address} is still unsubscribed from all mail; run without --list to clear that too.`);
}
