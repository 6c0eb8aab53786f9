/**
 * `newsletter suppress add|remove|list|import`: addresses never mailed again, whatever list they
 * are on. send-due records a suppressed recipient as `skipped`, with the reason. A 5.1.x reply
 * (source `smtp`) and `bounces import` (source `bounce`) add to the same list.
 */
import { printable } from '../../domain/printable.js';
import { normaliseAddress } from '../../domain/address.js';
import { InputError, UsageError } from '../../domain/errors.js';
import type { Suppression } from '../../store/store.js';
import { readSuppressionList } from '../../import/suppression-list.js';
import type { Context } from '../context.js';
import { withStore } from '../context.js';
import { isTerminal, printJson, println, table, time, warn } from '../output.js';

const MAX_REPORTED = 20;
const OPERATOR_REASON = 'added by an operator';
const IMPORT_REASON = 'imported from a suppression list';

export async function addCommand(
  context: Context,
  emails: string[],
  options: { reason?: string; json?: boolean },
): Promise<void> {
  const reason = cleanReason(options.reason) ?? OPERATOR_REASON;
  const addresses = emails.map(parseAddress);
  const { added } = await withStore(context, {}, (store) =>
    store.suppressMany(
      addresses.map((address) => ({ address, reason })),
      'operator',
      Date.now(),
    ),
  );
  if (options.json) {
    printJson({ added, alreadySuppressed: new Set(addresses).size - added });
    return;
  }
  println(
    `Suppressed ${added} ${added === 1 ? 'address' : 'addresses'}` +
      (added < new Set(addresses).size ? ` (${new Set(addresses).size - added} already were).` : '.'),
  );
}

export async function removeCommand(context: Context, emails: string[], options: { json?: boolean }) {
  const addresses = [...new Set(emails.map(parseAddress))];
  const results = await withStore(context, {}, async (store) => {
    const out: { address: string; removed: boolean }[] = [];
    for (const address of addresses)
      out.push({ address, removed: await store.unsuppress(address, Date.now()) });
    return out;
  });
  if (options.json) {
    printJson(results);
    return;
  }
  for (const { address, removed } of results) {
    if (removed) println(`${address} is no longer suppressed; later newsletters will mail it.`);
    else warn(`${address} was not suppressed.`);
  }
}

export async function listCommand(
  context: Context,
  options: { limit: string; after?: string; json?: boolean },
): Promise<void> {
  const limit = Number(options.limit);
  if (!Number.isInteger(limit) || limit <= 0)
    throw new UsageError(`--limit "${options.limit}" must be a whole number above 0.`);
  const rows: Suppression[] = await withStore(context, { readonly: true }, (store) =>
    store.listSuppressions({ afterAddress: options.after?.toLowerCase() ?? null, limit }),
  );
  if (options.json) {
    printJson(rows.map((row) => ({ ...row, createdAt: new Date(row.createdAt).toISOString() })));
    return;
  }
  if (rows.length === 0) {
    if (isTerminal() || context.global.verbose) println('No address is suppressed.');
    return;
  }
  println(
    table(
      ['address', 'source', 'since', 'report', 'reason'],
      // A bounce's or complaint's reason and Message-ID come from a stranger's report: escaped.
      rows.map((row) => [
        printable(row.address),
        row.source,
        time(row.createdAt),
        row.reportId === null ? '-' : printable(row.reportId),
        printable(row.reason),
      ]),
    ),
  );
  if (rows.length === limit && isTerminal())
    println(`(first ${limit}; see the next ones with --after ${rows.at(-1)?.address})`);
}

export async function importCommand(
  context: Context,
  file: string,
  options: { reason?: string; skipInvalid?: boolean; json?: boolean },
): Promise<void> {
  const fallback = cleanReason(options.reason) ?? IMPORT_REASON;
  const list = await readSuppressionList(file);
  if (list.invalid.length > 0 && !options.skipInvalid) {
    throw new InputError(
      `${file}: ${list.invalid.length} invalid ${list.invalid.length === 1 ? 'line' : 'lines'}; nothing was imported.`,
      [
        ...list.invalid.slice(0, MAX_REPORTED).map((row) => `line ${row.line}: ${row.problem}`),
        ...(list.invalid.length > MAX_REPORTED ? [`… and ${list.invalid.length - MAX_REPORTED} more`] : []),
        'Fix these lines, or pass --skip-invalid to import the valid ones only.',
      ],
    );
  }
  const { added } = await withStore(context, {}, (store) =>
    store.suppressMany(
      list.entries.map((entry) => ({
        address: entry.address,
        reason: cleanReason(entry.reason) ?? fallback,
      })),
      'import',
      Date.now(),
    ),
  );
  const distinct = new Set(list.entries.map((entry) => entry.address)).size;
  if (options.json) {
    printJson({
      read: list.entries.length,
      added,
      alreadySuppressed: distinct - added,
      invalid: list.invalid,
    });
    return;
  }
  println(
    `Read ${list.entries.length} addresses from ${file}: ${added} newly suppressed, ${distinct - added} already were.`,
  );
  for (const row of list.invalid.slice(0, MAX_REPORTED)) warn(`line ${row.line} skipped: ${row.problem}`);
  if (list.invalid.length > MAX_REPORTED)
    warn(`… and ${list.invalid.length - MAX_REPORTED} more invalid lines skipped`);
}

function parseAddress(raw: string): string {
  const result = normaliseAddress(raw);
  if (!result.ok) throw new InputError(`Not a usable address: ${result.problem}`);
  return result.address;
}

/** A reason is shown in tables and stored in the ledger's skip reasons: one line, bounded. */
function cleanReason(reason: string | null | undefined): string | null {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is removed
  const clean = (reason ?? '').replace(/[\u0000-\u001f\u007f\u2028\u2029\s]+/g, ' ').trim();
  return clean === '' ? null : clean.slice(0, 300);
}
