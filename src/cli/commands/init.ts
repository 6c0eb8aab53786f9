import { hostname } from 'node:os';
import type { Context } from '../context.js';
import { withStore } from '../context.js';
import { currentHost } from '../host-identity.js';
import { isTerminal, printJson, println, warn } from '../output.js';

export async function init(context: Context, options: { json?: boolean }): Promise<void> {
  const host = currentHost(context.config);
  const result = await withStore(context, { create: true, requireCurrentSchema: false }, async (store) => {
    const migrated = await store.migrate();
    let bound = await store.getMeta('host_id');
    let boundNow = false;
    if (bound === null && store.kind === 'sqlite') {
      // Promise 4: the database belongs to the host that created it until `host adopt` says otherwise.
      await store.setMeta('host_id', host.hostId);
      await store.setMeta('host_bound_at', new Date().toISOString());
      await store.recordEvent('host-bound', { hostId: host.hostId, hostname: hostname() }, Date.now());
      bound = host.hostId;
      boundNow = true;
    }
    return { ...migrated, boundHostId: bound, boundNow };
  });
  const database = context.config.database.kind === 'sqlite' ? context.config.database.path : 'postgres';
  if (options.json) {
    printJson({
      database,
      schemaFrom: result.from,
      schemaTo: result.to,
      hostId: host.hostId,
      boundHostId: result.boundHostId,
    });
    return;
  }
  if (host.warning) warn(host.warning);
  if (result.from === result.to) {
    if (isTerminal() || context.global.verbose) println(`${database} is up to date (schema ${result.to}).`);
  } else {
    println(`${database}: schema ${result.from} → ${result.to}.`);
  }
  if (result.boundNow) println(`Bound to this host (${host.hostId}).`);
  if (result.boundHostId && result.boundHostId !== host.hostId) {
    warn(
      `This database is bound to host ${result.boundHostId}, not this one (${host.hostId}); see \`newsletter host\`.`,
    );
  }
}
