import { normaliseAddress } from '../../domain/address.js';
import { InputError, UsageError } from '../../domain/errors.js';
import type { ForgottenAddresses } from '../../domain/forgotten.js';
import type { Subscriber } from '../../domain/types.js';
import type { ImportSummary, SubscriberInput } from '../../store/store.js';
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
  /** The list's membership becomes the file's addresses (issue 14). */
  sync?: boolean;
  /** Count what would change, change nothing. */
  dryRun?: boolean;
}

/** The column `recipients export` writes each subscriber's lists in: joined, not a merge field. */
export const LISTS_COLUMN = 'lists';

/**
 * All or nothing: the CSV streams into a staging area and is published in one short transaction
 * only once the whole file has been read (src/store/staged-import.ts); any fatal problem (or any
 * invalid row, unless --skip-invalid) publishes nothing, so a bad file changes nothing.
 */
export async function importCommand(context: Context, file: string, options: ImportOptions): Promise<void> {
  if (options.list !== undefined) validateListName(options.list);
  if (options.sync && options.list === undefined)
    throw new UsageError('--sync needs --list L: the list whose membership becomes the file.', [
      'e.g. newsletter recipients import crm.csv --list customers --sync (add --dry-run first to see who would leave)',
    ]);
  // A skipped row's person would leave the list for a typo in the file: a sync reads every row.
  if (options.sync && options.skipInvalid)
    throw new UsageError(
      '--sync cannot be used with --skip-invalid: an invalid row would make its person leave the list.',
      ['Fix the invalid rows (a --dry-run lists them), then sync.'],
    );
  keepHeapSmall();
  const invalid: { line: number; problem: string }[] = [];
  const duplicates: { line: number; firstLine: number; address: string }[] = [];
  let fieldNames: string[] = [];
  const events = readRecipientsCsv(file, { map: parseColumnMap(options.map ?? []) });
  // The header comes first; read it before the rows so that its field names are known.
  const first = await events.next();
  if (first.done || first.value.kind !== 'header') throw new InputError(`${file} has no header row.`);
  // A `lists` column (what `recipients export` writes) names lists to join, not a merge field.
  const rowLists = first.value.fields.includes(LISTS_COLUMN);
  fieldNames = first.value.fields.filter((name) => name !== LISTS_COLUMN);

  // A bar on stderr only when it is a terminal (src/cli/progress.ts).
  const progress = wantsProgress(context.global) ? await importProgress(file) : null;
  let forgotten: ForgottenAddresses | null = null;
  const erased: string[] = [];
  async function* rows(): AsyncGenerator<SubscriberInput> {
    for await (const event of events) {
      progress?.increment(1);
      // An erased address stays out of the list, whatever the CRM still holds (issue 13).
      if (event.kind === 'row' && forgotten?.has(event.address)) erased.push(event.address);
      else if (event.kind === 'row' && rowLists) {
        const { [LISTS_COLUMN]: cell = '', ...fields } = event.fields;
        const lists = cell.split(/[\s;,]+/).filter((list) => list !== '');
        const bad = lists.find((list) => !LIST_NAME.test(list));
        if (bad !== undefined)
          invalid.push({
            line: event.line,
            problem: `list name "${bad}" in the lists column is not allowed (letters, digits, dot, dash, underscore)`,
          });
        else yield { email: event.email, address: event.address, name: event.name, fields, lists };
      } else if (event.kind === 'row')
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
      sync: options.sync === true,
      dryRun: options.dryRun === true,
      rowLists,
    });
  }).finally(() => progress?.stop());
  if (options.dryRun) {
    reportDryRun(file, options, summary, { invalid, duplicates, erased: erased.length, fields: fieldNames });
    return;
  }
  if (options.json) {
    const synced = options.sync ? { joined: summary.addedToList, left: summary.leftList ?? 0 } : {};
    printJson({ ...summary, ...synced, fields: fieldNames, invalid, duplicates, erased: erased.length });
    return;
  }
  // Said as a count, never the addresses: the point of an erasure is not to name the person.
  if (erased.length > 0)
    warn(
      `${erased.length} ${erased.length === 1 ? 'row was' : 'rows were'} left out: erased with \`recipients forget\``,
    );
  println(
    `Imported ${summary.created + summary.updated} subscribers from ${file}: ${summary.created} new, ${summary.updated} updated` +
      (options.list && options.sync
        ? `; list "${options.list}" synced: ${summary.addedToList} joined, ${summary.leftList ?? 0} left (they stay subscribers).`
        : options.list
          ? `, ${summary.addedToList} added to list "${options.list}".`
          : '.'),
  );
  if (options.sync && (summary.stayedOut ?? 0) > 0)
    println(stayOutSentence(summary.stayedOut ?? 0, options.list as string));
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

export async function removeCommand(
  context: Context,
  email: string,
  options: { list?: string } = {},
): Promise<void> {
  const { address } = parseAddress(email);
  if (options.list !== undefined) {
    // One list only: the subscriber, their other lists and any opt-out stay.
    const list = options.list;
    validateListName(list);
    const result = await withStore(context, {}, (store) => store.removeFromList(address, list, Date.now()));
    if (result === 'no-subscriber') throw new InputError(`There is no subscriber ${address}.`);
    if (result === 'no-list')
      throw new InputError(`There is no list "${list}".`, [
        'See the lists with: newsletter recipients list --lists',
      ]);
    if (result === 'not-a-member')
      throw new InputError(`${address} is not on list "${list}"; nothing changed.`);
    println(`Removed ${address} from list "${list}". The subscriber and their other lists stay.`);
    return;
  }
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

/**
 * An opt-out made by the operator (source `command`): from all mail, or with --list from those
 * lists only (kept by list name and address: it outlives remove, --sync and lists delete).
 */
export async function unsubscribeCommand(
  context: Context,
  email: string,
  options: { list?: string[] } = {},
): Promise<void> {
  const { address } = parseAddress(email);
  const lists = options.list ?? [];
  for (const list of lists) validateListName(list);
  const result = await withStore(context, {}, async (store) => {
    if (lists.length > 0) await requireLists(store, lists);
    return store.optOut(
      { address },
      lists.length > 0 ? { kind: 'lists', lists } : { kind: 'all' },
      'command',
      Date.now(),
    );
  });
  if (result === null) throw new InputError(`There is no subscriber ${address}.`);
  const from =
    lists.length > 0
      ? `list${lists.length === 1 ? '' : 's'} ${lists.map((l) => `"${l}"`).join(', ')}`
      : 'all mail';
  println(
    result.changed
      ? `Unsubscribed ${address} from ${from}.`
      : `${address} was already unsubscribed from ${from}.`,
  );
}

/** Refuses (exit 4, nothing changed) any of `lists` that does not exist, naming the ones that do. */
export async function requireLists(
  store: { lists(): Promise<{ name: string }[]> },
  lists: string[],
): Promise<void> {
  const names = (await store.lists()).map((l) => l.name);
  const missing = lists.filter((list) => !names.includes(list));
  if (missing.length > 0)
    throw new InputError(
      `There is no list ${missing.map((l) => `"${l}"`).join(', ')}; lists: ${names.join(', ') || '(none yet)'}.`,
    );
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
    // Times in every --json output are ISO 8601 (issue 14), never epoch milliseconds.
    if (options.json)
      printJson(subscribers.map((s) => ({ ...s, createdAt: new Date(s.createdAt).toISOString() })));
    else
      println(
        table(
          ['email', 'name', 'status', 'lists', 'added'],
          subscribers.map((s) => [s.email, s.name, s.status, listsInWords(s), time(s.createdAt)]),
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

/** `news,readers (left)`: its lists, each it left marked; a list it left and is no longer on too. */
function listsInWords(s: Subscriber): string {
  const left = new Set(s.leftLists);
  const shown = s.lists.map((name) => (left.has(name) ? `${name} (left)` : name));
  for (const name of s.leftLists) if (!s.lists.includes(name)) shown.push(`${name} (left)`);
  return shown.join(',');
}

export function parseAddress(raw: string): { email: string; address: string } {
  const result = normaliseAddress(raw);
  if (!result.ok) throw new InputError(`Not a usable address: ${result.problem}`);
  return { email: result.email, address: result.address };
}

const LIST_NAME = /^[\w.-]{1,64}$/;

function stayOutSentence(count: number, list: string): string {
  return `${count} ${count === 1 ? 'address' : 'addresses'} of the file opted out (of "${list}" or of all mail) or ${count === 1 ? 'is' : 'are'} suppressed, and stay${count === 1 ? 's' : ''} out.`;
}

/** `import --dry-run`: what the import would change; the database is as it was. */
function reportDryRun(
  file: string,
  options: ImportOptions,
  summary: ImportSummary,
  rest: {
    invalid: { line: number; problem: string }[];
    duplicates: { line: number; firstLine: number; address: string }[];
    erased: number;
    fields: string[];
  },
): void {
  // Refused: rows the import leaves out (invalid, with --skip-invalid; erased addresses).
  const refused = rest.invalid.length + rest.erased;
  if (options.json) {
    printJson({
      dryRun: true,
      created: summary.created,
      updated: summary.updated,
      joining: options.list ? summary.addedToList : 0,
      leaving: options.sync ? (summary.leftList ?? 0) : 0,
      refused,
      stayedOut: summary.stayedOut ?? 0,
      fields: rest.fields,
      invalid: rest.invalid,
      duplicates: rest.duplicates,
      erased: rest.erased,
    });
    return;
  }
  const lines = [
    `Dry run, nothing was changed. Importing ${file} would:`,
    `  add ${summary.created} new ${summary.created === 1 ? 'subscriber' : 'subscribers'} and update ${summary.updated}`,
  ];
  if (options.list) {
    lines.push(`  make ${summary.addedToList} join list "${options.list}"`);
    if (options.sync)
      lines.push(`  make ${summary.leftList ?? 0} leave list "${options.list}" (they stay subscribers)`);
    if ((summary.stayedOut ?? 0) > 0)
      lines.push(`  ${stayOutSentence(summary.stayedOut ?? 0, options.list)}`);
  }
  lines.push(
    `  refuse ${refused} ${refused === 1 ? 'row' : 'rows'}${refused > 0 ? ` (${rest.invalid.length} invalid, ${rest.erased} erased with \`recipients forget\`)` : ''}`,
  );
  println(lines.join('\n'));
  for (const row of rest.invalid.slice(0, MAX_REPORTED))
    warn(`line ${row.line} would be skipped: ${row.problem}`);
  if (rest.invalid.length > MAX_REPORTED)
    warn(`… and ${rest.invalid.length - MAX_REPORTED} more invalid rows`);
}

export function validateListName(name: string): void {
  if (!LIST_NAME.test(name)) {
    throw new InputError(`List name "${name}" is not allowed.`, [
      'Use letters, digits, dot, dash and underscore (at most 64).',
    ]);
  }
}
