/**
 * The ledger's own thread (the other side of ledger-thread.ts): a second connection to the same
 * database file that runs the send path's three writes, claimBatch, recordOutcomes and
 * releaseClaims, exactly as the store runs them on its own connection (claim.ts, fence.ts), one
 * at a time, in the order they were asked for.
 *
 * A claim commits at synchronous=FULL here, as open.ts sets it: the fsync stops this thread only,
 * and the claim is answered once it is on disk, so nothing of it can be handed over before.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as claim from './claim.js';
import { SqliteDb } from './db.js';
import * as fence from './fence.js';
import type { LedgerCall, LedgerReply, LedgerThreadOptions } from './ledger-thread.js';
import { openSqlite } from './open.js';

const port = parentPort;
if (!port) throw new Error('ledger-worker.ts runs as a worker thread (ledger-thread.ts starts it)');
const { file, busyTimeoutMs } = workerData as LedgerThreadOptions;
const c = new SqliteDb(openSqlite(file, { create: false, readonly: false, busyTimeoutMs }));
// Up, with the connection open: ledger-thread.ts sends nothing before this.
port.postMessage({ ready: true });

function run(call: LedgerCall): unknown {
  switch (call.method) {
    case 'claimBatch':
      // No WalSync: the commit itself fsyncs (FULL), on this thread.
      return c.immediate(() => claim.claimNow(c, call.args[0]));
    case 'recordOutcomes':
      return fence.recordOutcomes(c, ...call.args);
    case 'releaseClaims':
      return fence.releaseClaims(c, ...call.args);
    case 'settings':
      return {
        journalMode: String(c.db.pragma('journal_mode', { simple: true })),
        synchronous: Number(c.db.pragma('synchronous', { simple: true })),
      };
    case 'close':
      c.db.close();
      return null;
  }
}

port.on('message', (call: LedgerCall) => {
  let reply: LedgerReply;
  try {
    reply = { id: call.id, value: run(call) };
  } catch (error) {
    const { name, message, code } = error as { name?: string; message?: string; code?: unknown };
    reply = {
      id: call.id,
      error: {
        name: String(name ?? 'Error'),
        message: String(message ?? error),
        code: code === undefined ? undefined : String(code),
      },
    };
  }
  port.postMessage(reply);
  if (call.method === 'close') port.close();
});
