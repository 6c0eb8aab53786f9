/**
 * `recipients export [--list L] [--output FILE]`: the subscribers as a CSV that `recipients import`
 * reads back unchanged: `email`, `name`, every merge field the exported subscribers have (one
 * column each, sorted), and `lists` (their lists, `;`-separated; import joins them). Opt-outs and
 * suppressions are not in it: they stay in the database, and an import never re-subscribes anyone.
 *
 * Two passes over the subscribers, a page at a time (memory stays one page): the first collects
 * the field names, the second writes the rows. --output writes an owner-only file (it holds
 * personal data, and is never written over another file) through a temporary name, so a failed
 * export never leaves half a file.
 */
import { createWriteStream } from 'node:fs';
import { link, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { InputError } from '../../domain/errors.js';
import type { Subscriber } from '../../domain/types.js';
import { PRIVATE_FILE_MODE } from '../../host/private-files.js';
import type { Store } from '../../store/store.js';
import type { Context } from '../context.js';
import { withStore } from '../context.js';
import { warn } from '../output.js';
import { LISTS_COLUMN, requireLists, validateListName } from './recipients.js';

const PAGE = 1000;

/** RFC 4180: quoted when it holds a quote, a comma or a line break (or is empty of meaning otherwise). */
export function csvCell(value: string): string {
  return /["\r\n,]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

async function* pages(store: Store, list: string | undefined): AsyncGenerator<Subscriber[]> {
  let afterId = 0;
  for (;;) {
    const page = await store.listSubscribers({ list, afterId, limit: PAGE });
    if (page.length === 0) return;
    yield page;
    afterId = (page[page.length - 1] as Subscriber).id;
  }
}

function write(out: Writable, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    out.write(text, (error) => (error ? reject(error) : resolve()));
  });
}

export async function exportCommand(
  context: Context,
  options: { list?: string; output?: string },
): Promise<void> {
  const list = options.list;
  if (list !== undefined) validateListName(list);
  // Never over another file: an export holds personal data, and a typo must not clobber anything.
  if (options.output !== undefined && existsSync(options.output))
    throw new InputError(`${options.output} already exists; nothing was written.`, [
      'Choose another --output, or remove that file first.',
    ]);
  await withStore(context, { readonly: true }, async (store) => {
    if (list !== undefined) await requireLists(store, [list]);
    const names = new Set<string>();
    for await (const page of pages(store, list))
      for (const s of page) for (const name of Object.keys(s.fields)) names.add(name);
    // A merge field once called `lists` (before `lists` meant memberships) cannot be a column.
    if (names.delete(LISTS_COLUMN))
      warn(`the merge field "${LISTS_COLUMN}" is left out: that column holds each subscriber's lists`);
    const fields = [...names].sort();
    const temporary = options.output === undefined ? null : `${options.output}.partial-${process.pid}`;
    const out: Writable =
      temporary === null
        ? process.stdout
        : createWriteStream(temporary, { flags: 'wx', mode: PRIVATE_FILE_MODE });
    try {
      await write(out, `${['email', 'name', ...fields, LISTS_COLUMN].map(csvCell).join(',')}\n`);
      for await (const page of pages(store, list)) {
        let text = '';
        for (const s of page) {
          const cells = [s.email, s.name, ...fields.map((name) => s.fields[name] ?? ''), s.lists.join(';')];
          text += `${cells.map(csvCell).join(',')}\n`;
        }
        await write(out, text);
      }
      if (temporary !== null) {
        await new Promise<void>((resolve, reject) =>
          out.end((error?: Error | null) => (error ? reject(error) : resolve())),
        );
        // link, not rename: it fails (EEXIST) rather than replace a file made meanwhile.
        await link(temporary, options.output as string);
        await rm(temporary, { force: true });
      }
    } catch (error) {
      if (temporary !== null) {
        out.destroy();
        await rm(temporary, { force: true });
        if (
          (error as NodeJS.ErrnoException).code === 'EEXIST' ||
          (error as NodeJS.ErrnoException).code === 'ENOENT'
        )
          throw new InputError(`Cannot write ${options.output}: ${(error as Error).message}`);
      }
      throw error;
    }
  });
}
