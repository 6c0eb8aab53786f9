import { normaliseAddress } from '../../domain/address.js';
import { InputError, UsageError } from '../../domain/errors.js';
import type { ForgottenAddresses } from '../../domain/forgotten.js';
import type { SubscriberInput } from '../../store/store.js';
import { parseColumnMap } from '../../import/csv-header.js';
import { readRecipientsCsv } from '../../import/csv-recipients.js';
import type { Context } from '../context.js';
import { withStore } from '../context.js';
import { failpointsFrom } from '../failpoints.js';
import { printJson, println, table, time, warn } from '../output.js';
import { importProgress, wantsProgress } from '../progress.js';
import { keepHeapSmall } from '../heap.js';

const MAX_REPORTED = 20;

interface ImportOptions {
  list?: string;
  skipInvalid?: boolean;
  json?: boolean;
  /** `--map "Header=name"`, repeatable. */
  map?: string[];
}

/**
 * All or nothing: the CSV streams into a staging area and is published in one short transaction
 * only once the whole file has been read (src/store/staged-import.ts); any fatal problem (or any
 * invalid row, unless --skip-invalid) publishes nothing, so a bad file changes nothing.
 */
export async function importCommand(context: Context, file: string, options: ImportOptions): Promise<void> {
  if (options.list !== undefined) validateListName(options.list);
  keepHeapSmall();
  const invalid: { line: number; problem: string }[] = [];
  const duplicates: { line: number; firstLine: number; address: string }[] = [];
  let fieldNames: string[] = [];
  const events = readRecipientsCsv(file, { map: parseColumnMap(options.map ?? []) });
  // The header comes first; read it before the rows so that its field names are known.
  const first = await events.next();
  if (first.done || first.value.kind !== 'header') throw new InputError(`${file} has no header row.`);
  fieldNames = first.value.fields;

  // A bar on stderr only when it is a terminal (src/cli/progress.ts).
  const progress = wantsProgress(context.global) ? await importProgress(file) : null;
  let forgotten: ForgottenAddresses | null = null;
  const erased: string[] = [];
  async function* rows(): AsyncGenerator<SubscriberInput> {
    for await (const event of events) {
      progress?.increment(1);
      // An erased address stays out of the list, whatever the CRM still holds (issue 13).
      if (event.kind === 'row' && forgotten?.has(event.address)) erased.push(event.address);
      else if (event.kind === 'row')
        yield { email: event.email, address: event.address, name: event.name, fields: event.fields };
      else if (event.kind === 'invalid') invalid.push(event);
      else if (event.kind === 'duplicate') duplicates.push(event);
    }
    if (invalid.length > 0 && !options.skipInvalid) {
      throw new InputError(
        `${file}: ${invalid.length} invalid ${invalid.length === 1 ? 'row' : 'rows'}; nothing was imported.`,
        [
          ...invalid.slice(0, MAX_REPORTED).map((row) => `line ${row.line}: ${row.problem}`),
          ...(invalid.length > MAX_REPORTED ? [`… and ${invalid.length - MAX_REPORTED} more`] : []),
          'Fix these rows, or pass --skip-invalid to import the valid rows only.',
        ],
      );
    }
  }

  const summary = await withStore(context, {}, async (store) => {
    forgotten = await store.forgottenAddresses();
    return store.importSubscribers(rows(), {
      list: options.list ?? null,
      fieldNames,
      now: Date.now(),
      at: failpointsFrom(process.env.NEWSLETTER_FAILPOINTS),
    });
  }).finally(() => progress?.stop());
  if (options.json) {
    printJson({ ...summary, fields: fieldNames, invalid, duplicates, erased: erased.length });
    return;
  }
  // Said as a count, never the addresses: the point of an erasure is not to name the person.
  if (erased.length > 0)
    warn(
      `${erased.length} ${erased.length === 1 ? 'row was' : 'rows were'} left out: erased with \`recipients forget\``,
    );
  println(
    `Imported ${summary.created + summary.updated} subscribers from ${file}: ${summary.created} new, ${summary.updated} updated` +
      (options.list ? `, ${summary.addedToList} added to list "${options.list}".` : '.'),
  );
  for (const row of invalid.slice(0, MAX_REPORTED)) warn(`line ${row.line} skipped: ${row.problem}`);
  if (invalid.length > MAX_REPORTED) warn(`… and ${invalid.length - MAX_REPORTED} more invalid rows skipped`);
  for (const row of duplicates.slice(0, MAX_REPORTED)) {
    warn(
      `line ${row.line}: ${row.address} already appeared on line ${row.firstLine}; the first row was kept`,
    );
  }
}

export async function addCommand(
  context: Context,
  email: string,
  options: { name?: string; list?: string[]; field?: string[] },
): Promise<void> {
  const address = parseAddress(email);
  const fields: Record<string, string> = {};
  for (const pair of options.field ?? []) {
    const match = /^([a-z_][a-z0-9_]*)=(.*)$/is.exec(pair);
    if (!match) throw new InputError(`--field "${pair}" must be key=value, e.g. city=London.`);
    // Fields match in any case ({{City}} is {{city}}): stored lower-cased, as an import names them.
    fields[(match[1] as string).toLowerCase()] = match[2] as string;
  }
  if (options.name !== undefined && /[\r\n\0]/.test(options.name))
    throw new InputError('--name must be one line.');
  for (const list of options.list ?? []) validateListName(list);
  const { created } = await withStore(context, {}, async (store) => {
    // Refused, not added as unsubscribed: storing the address again would undo the erasure.
    if ((await store.forgottenAddresses()).has(address.address)) {
      throw new InputError(
        `${address.address} was erased with \`recipients forget\`; it is not added again.`,
        ['An erased address is kept out for good, so that no CRM export or script can bring it back.'],
      );
    }
    // Without --name an existing subscriber keeps theirs: a list change must not wipe it.
    const name = options.name ?? (await store.getSubscriber(address.address))?.name ?? '';
    return store.addSubscriber({ ...address, name, fields }, options.list ?? [], Date.now());
  });
  println(`${created ? 'Added' : 'Updated'} ${address.email}.`);
}

export async function removeCommand(context: Context, email: string): Promise<void> {
  const { address } = parseAddress(email);
  const removed = await withStore(context, {}, (store) => store.removeSubscriber(address, Date.now()));
  if (!removed) throw new InputError(`There is no subscriber ${address}.`);
  println(`Removed ${address}. Deliveries already recorded for it stay in the ledger.`);
}

/**
 * A GDPR erasure: the person's data and the ledger's copies of their address go; a keyed hash
 * stays so that a re-import or `add` keeps them out (src/domain/forgotten.ts). Works whether or
 * not the address is still a subscriber (an erasure request may come after a remove).
 */
export async function forgetCommand(
  context: Context,
  email: string,
  options: { json?: boolean },
): Promise<void> {
  const { address } = parseAddress(email);
  const result = await withStore(context, {}, (store) => store.forgetAddress(address, Date.now()));
  if (options.json) {
    printJson({ forgotten: true, subscriber: result.subscriber, deliveries: result.deliveries });
    return;
  }
  println(
    `Forgot ${address}: ${result.subscriber ? 'subscriber deleted' : 'no subscriber row'}, ${result.deliveries} ledger ${result.deliveries === 1 ? 'row' : 'rows'} no longer name it. Re-imports and \`recipients add\` will leave it out.`,
  );
}

export async function unsubscribeCommand(context: Context, email: string): Promise<void> {
  const { address } = parseAddress(email);
  const result = await withStore(context, {}, async (store) => {
    if (!(await store.getSubscriber(address))) return null;
    return store.unsubscribe(address, Date.now());
  });
  if (result === null) throw new InputError(`There is no subscriber ${address}.`);
  println(result ? `Unsubscribed ${address}.` : `${address} was already unsubscribed.`);
}

export async function listCommand(
  context: Context,
  options: { list?: string; lists?: boolean; limit: string; after?: string; json?: boolean },
): Promise<void> {
  const limit = Number(options.limit);
  if (!Number.isInteger(limit) || limit <= 0)
    throw new UsageError(`--limit "${options.limit}" must be a whole number above 0.`);
  const afterId = options.after === undefined ? 0 : Number(options.after);
  if (!Number.isInteger(afterId) || afterId < 0)
    throw new UsageError(`--after "${options.after}" must be a subscriber id (a whole number).`);
  await withStore(context, { readonly: true }, async (store) => {
    if (options.lists) {
      // Both counts: `members` is everyone on the list; `reachable` leaves out the unsubscribed
      // and suppressed, whom a send records `skipped`: it is how many a newsletter would mail.
      const lists = await store.lists();
      if (options.json) printJson(lists);
      else
        println(
          table(
            ['list', 'members', 'reachable'],
            lists.map((l) => [l.name, l.members, l.reachable]),
          ),
        );
      return;
    }
    if (options.list !== undefined) {
      const names = (await store.lists()).map((l) => l.name);
      if (!names.includes(options.list))
        throw new InputError(
          `There is no list "${options.list}"; lists: ${names.join(', ') || '(none yet: import recipients with --list)'}.`,
        );
    }
    // One more than asked: whether the page stopped at the limit or at the end.
    const fetched = await store.listSubscribers({ list: options.list, afterId, limit: limit + 1 });
    const more = fetched.length > limit;
    const subscribers = more ? fetched.slice(0, limit) : fetched;
    if (options.json) printJson(subscribers);
    else
      println(
        table(
          ['email', 'name', 'status', 'lists', 'added'],
          subscribers.map((s) => [s.email, s.name, s.status, s.lists.join(','), time(s.createdAt)]),
        ),
      );
    // On stderr, so that stdout stays the table (or JSON) a script reads.
    if (more) {
      const last = subscribers[subscribers.length - 1] as { id: number };
      process.stderr.write(
        `showing the first ${limit}${afterId > 0 ? ` after id ${afterId}` : ''}; more with --after ${last.id}\n`,
      );
    }
  });
}

function parseAddress(raw: string): { email: string; address: string } {
  const result = normaliseAddress(raw);
  if (!result.ok) throw new InputError(`Not a usable address: ${result.problem}`);
  return { email: result.email, address: result.address };
}

function validateListName(name: string): void {
  if (!/^[\w.-]{1,64}$/.test(name)) {
    throw new InputError(`List name "${name}" is not allowed.`, [
      'Use letters, digits, dot, dash and underscore (at most 64).',
    ]);
  }
}
