import { unsubscribeKeys } from '../../config.js';
import { ConfigError, InputError } from '../../domain/errors.js';
import { parseUnsubscribeInput, verifyUnsubscribeToken } from '../../render/unsubscribe-token.js';
import type { Context } from '../context.js';
import { withStore } from '../context.js';
import { printJson, println } from '../output.js';

/** For sites that serve /u/TOKEN themselves and pass the token (or the whole URL) on. */
export async function unsubscribeCommand(
  context: Context,
  tokenOrUrl: string,
  options: { json?: boolean },
): Promise<void> {
  const secret = context.config.secret;
  if (!secret)
    throw new ConfigError('NEWSLETTER_SECRET is not set: it is needed to check unsubscribe tokens.');
  const token = parseUnsubscribeInput(tokenOrUrl);
  // The previous key too, while a rotation lets it (NEWSLETTER_SECRET_PREVIOUS).
  const target =
    token === null ? null : verifyUnsubscribeToken(unsubscribeKeys(context.config, Date.now()), token);
  // A bad or tampered token reveals nothing about who it might belong to.
  if (!target)
    throw new InputError('This unsubscribe token is not valid.', ['Check that the whole link was copied.']);
  if (target.kind === 'test') {
    // The link of a test send or preview: valid, and deliberately acted on by nobody (exit 0).
    if (options.json) printJson({ test: true, newsletterId: target.newsletterId, changed: false });
    else println(`This is the test link of newsletter ${target.newsletterId}: nothing changed.`);
    return;
  }
  // A v2 link leaves the lists of its newsletter; a v1 link (sent before) all mail, as it did.
  const result = await withStore(context, {}, (store) =>
    store.optOut(
      { subscriberId: target.subscriberId },
      target.scope === 'all' ? { kind: 'all' } : { kind: 'newsletter', newsletterId: target.newsletterId },
      'command',
      Date.now(),
    ),
  );
  if (!result)
    throw new InputError('This unsubscribe token is not valid.', ['Its subscriber no longer exists.']);
  const from = result.all
    ? 'all mail'
    : `list${result.lists.length === 1 ? '' : 's'} ${result.lists.join(', ')}`;
  if (options.json)
    printJson({ address: result.address, changed: result.changed, all: result.all, lists: result.lists });
  else
    println(
      result.changed
        ? `Unsubscribed ${result.address} from ${from}.`
        : `${result.address} was already unsubscribed from ${from}.`,
    );
}
