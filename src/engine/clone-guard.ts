import { CloneRefusedError } from '../domain/errors.js';
import type { SendStore } from './store.js';

/**
 * Promise 4: a SQLite database copied to a cloned server refuses to send there. `init` (or
 * `host adopt`) stores the host id the database is bound to; this host must be that one.
 */
export async function guardAgainstClone(store: SendStore, hostId: string): Promise<void> {
  if (store.kind !== 'sqlite') return;
  const bound = await store.getMeta('host_id');
  if (bound === hostId) return;
  throw new CloneRefusedError(
    bound
      ? `This database is bound to host ${bound}, but this is host ${hostId}: refusing to send.`
      : `This database is not bound to any host (this is host ${hostId}): refusing to send.`,
    [
      'If this server is a clone (restored from an image or a backup), its copy of the database must not send:',
      'the original may be sending the same newsletter. If this host really is the one that should send now,',
      'run `newsletter host adopt` here (and stop the cron line on the other host). `--dry-run` works anywhere.',
    ],
  );
}
