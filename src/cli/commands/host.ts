import { hostname } from 'node:os';
import { InputError } from '../../domain/errors.js';
import type { Context } from '../context.js';
import { withStore } from '../context.js';
import { currentHost } from '../host-identity.js';
import { printJson, println, warn } from '../output.js';

export async function hostCommand(context: Context, options: { json?: boolean }): Promise<void> {
  const host = currentHost(context.config);
  if (context.config.database.kind === 'postgres') {
    // A PostgreSQL database is shared by several hosts on purpose: there is no binding to check.
    if (options.json)
      printJson({ boundHostId: null, currentHostId: host.hostId, source: host.source, shared: true });
    else
      println(
        `this host:    ${host.hostId} (from ${host.source}); PostgreSQL is shared by design, no host binding.`,
      );
    return;
  }
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
  // `host` declares --json too, and commander hands `host adopt --json` to the parent: read it there.
  const json = options.json === true || (context.global as { json?: boolean }).json === true;
  const host = currentHost(context.config);
  if (context.config.database.kind === 'postgres') {
    throw new InputError(
      'PostgreSQL databases are shared by several hosts on purpose: there is nothing to adopt.',
    );
  }
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
  if (json) {
    printJson({ previousHostId: previous, hostId: host.hostId });
    return;
  }
  if (previous === host.hostId) println(`This database was already bound to this host (${host.hostId}).`);
  else
    println(
      `This database is now bound to this host (${host.hostId}); it was bound to ${previous ?? '(none)'}.`,
    );
}
