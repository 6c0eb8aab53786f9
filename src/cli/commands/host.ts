import { hostname } from 'node:os';
import type { Context } from '../context.js';
import { withStore } from '../context.js';
import { currentHost } from '../host-identity.js';
import { printJson, println, warn } from '../output.js';

export async function hostCommand(context: Context, options: { json?: boolean }): Promise<void> {
  const host = currentHost(context.config);
  const bound = await withStore(context, { readonly: true }, (store) => store.getMeta('host_id'));
  if (options.json) {
    printJson({
      boundHostId: bound,
      currentHostId: host.hostId,
      source: host.source,
      matches: bound === host.hostId,
    });
    return;
  }
  println(`bound host:   ${bound ?? '(none)'}`);
  println(`this host:    ${host.hostId} (from ${host.source})`);
  if (host.warning) warn(host.warning);
  if (bound !== host.hostId) {
    warn(
      'This host may not send from this database. If it should (the database was moved here on purpose), run `newsletter host adopt`.',
    );
  }
}

/** Rebinds the database to this host and records what it replaced. */
export async function adoptCommand(context: Context, options: { json?: boolean }): Promise<void> {
  const host = currentHost(context.config);
  const previous = await withStore(context, {}, async (store) => {
    const old = await store.getMeta('host_id');
    await store.setMeta('host_id', host.hostId);
    await store.setMeta('host_bound_at', new Date().toISOString());
    await store.recordEvent(
      'host-adopt',
      { previous: old, hostId: host.hostId, hostname: hostname() },
      Date.now(),
    );
    return old;
  });
  if (options.json) {
    printJson({ previousHostId: previous, hostId: host.hostId });
    return;
  }
  if (previous === host.hostId) println(`This database was already bound to this host (${host.hostId}).`);
  else
    println(
      `This database is now bound to this host (${host.hostId}); it was bound to ${previous ?? '(none)'}.`,
    );
}
