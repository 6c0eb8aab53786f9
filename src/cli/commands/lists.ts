/**
 * `lists`, `lists rename OLD NEW`, `lists delete L` (issue 14). A rename keeps every newsletter and
 * opt-out of the list (they follow it). A delete takes the memberships with it (subscribers stay)
 * and is refused while a scheduled or sending newsletter names the list, naming them; drafts stop
 * naming it (said), and its opt-outs stay, kept by name, should a list of that name come back.
 */
import { InputError } from '../../domain/errors.js';
import type { Context } from '../context.js';
import { withStore } from '../context.js';
import { printJson, println, table, warn } from '../output.js';
import { validateListName } from './recipients.js';

export async function listsCommand(context: Context, options: { json?: boolean }): Promise<void> {
  await withStore(context, { readonly: true }, async (store) => {
    const lists = await store.lists();
    if (options.json) printJson(lists);
    else
      println(
        table(
          ['list', 'members', 'reachable'],
          lists.map((l) => [l.name, l.members, l.reachable]),
        ),
      );
  });
}

export async function renameListCommand(
  context: Context,
  from: string,
  to: string,
  options: { json?: boolean },
): Promise<void> {
  validateListName(from);
  validateListName(to);
  if (from === to) throw new InputError(`"${from}" already has that name; nothing changed.`);
  const result = await withStore(context, {}, (store) => store.renameList(from, to, Date.now()));
  if (!result.ok && result.reason === 'no-list')
    throw new InputError(`There is no list "${from}".`, ['See the lists with: newsletter lists']);
  if (!result.ok)
    throw new InputError(`There is already a list "${to}"; nothing changed.`, [
      'Choose another name, or delete that list first.',
    ]);
  if (options.json) printJson({ renamed: true, from, to });
  else println(`Renamed list "${from}" to "${to}". Its newsletters, members and opt-outs follow it.`);
}

export async function deleteListCommand(
  context: Context,
  name: string,
  options: { json?: boolean },
): Promise<void> {
  validateListName(name);
  const result = await withStore(context, {}, (store) => store.deleteList(name, Date.now()));
  if (!result.ok && result.reason === 'no-list')
    throw new InputError(`There is no list "${name}".`, ['See the lists with: newsletter lists']);
  if (!result.ok && result.reason === 'in-use')
    throw new InputError(
      `List "${name}" is used by ${result.newsletters.length === 1 ? 'a newsletter' : 'newsletters'} that will be sent: nothing was deleted.`,
      [
        ...result.newsletters.map((n) => `newsletter ${n.id} "${n.subject}" is ${n.status}`),
        'Cancel them (newsletter cancel ID), or wait until they are sent, then delete the list.',
      ],
    );
  if (!result.ok) throw new Error('unreachable');
  if (options.json) {
    printJson({ deleted: true, list: name, members: result.members, drafts: result.drafts.map((d) => d.id) });
    return;
  }
  println(
    `Deleted list "${name}" and its ${result.members} ${result.members === 1 ? 'membership' : 'memberships'}; the subscribers stay.`,
  );
  for (const draft of result.drafts) warn(`draft ${draft.id} "${draft.subject}" no longer names "${name}"`);
}
