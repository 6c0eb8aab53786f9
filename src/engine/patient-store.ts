/**
 * A run's view of the store that waits out a busy or restarting database instead of failing.
 *
 * A transient error (src/store/transient.ts: SQLite's write lock held by an import or a backup,
 * a PostgreSQL lock timeout, deadlock, restart or dropped connection) means the call did not take
 * effect; the same call is tried again with growing, jittered pauses (src/store/wait-out-busy.ts)
 * until it succeeds or the run's lease runs out. Only then does the run give up
 * (TransientDatabaseError, exit 9), because past its lease another run may take its rows over.
 * This is what keeps a known outcome (the server accepted the batch) from being thrown away by a
 * database that was busy for a few seconds.
 *
 * Every method the run calls is retried this way, and retrying is safe for each of them: a call
 * that failed transiently changed nothing, and the one ambiguous case (PostgreSQL's connection
 * lost while COMMIT was on the wire) errs on the safe side: a claim made twice leaves the first
 * batch `claimed` by this run and never handed over, which endRun gives back; an outcome written
 * twice is refused by the fence the second time. (`importSubscribers`, whose row stream is used
 * up by its first attempt, is not on SendStore: a run cannot call it.)
 */
import { TransientDatabaseError } from '../domain/errors.js';
import type { Millis } from '../domain/types.js';
import { StillBusyError, waitOutBusy } from '../store/wait-out-busy.js';
import type { SendStore } from './store.js';

export interface Patience {
  /** The time after which the run stops waiting: its lease's end as the database last accepted it. */
  deadline: () => Millis;
  now: () => Millis;
  /** Told once per call that has to wait, with the error that made it wait. */
  onWait?: (method: string, error: unknown) => void;
}

const NEVER_RETRIED = new Set<PropertyKey>(['close']);

export function patientStore(store: SendStore, patience: Patience): SendStore {
  return new Proxy(store, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== 'function' || NEVER_RETRIED.has(property)) return value;
      return (...args: unknown[]) =>
        waitOutTransient(String(property), () => value.apply(target, args), patience);
    },
  });
}

export async function waitOutTransient<T>(
  what: string,
  call: () => Promise<T>,
  patience: Patience,
): Promise<T> {
  try {
    return await waitOutBusy(call, {
      now: patience.now,
      until: patience.deadline,
      onBusy: ({ attempt, error }) => {
        if (attempt === 1) patience.onWait?.(what, error);
      },
    });
  } catch (error) {
    if (error instanceof StillBusyError) throw gaveUp(what, error);
    throw error;
  }
}

function gaveUp(what: string, busy: StillBusyError): TransientDatabaseError {
  const cause = (busy.cause as Error)?.message ?? String(busy.cause);
  return new TransientDatabaseError(
    `The database stayed busy or out of reach while this run tried to ${describe(what)} (${busy.attempts} attempts over ${(busy.waitedMs / 1000).toFixed(1)} s, up to the end of its lease): ${cause}`,
    [
      'Nothing is lost: what this run had handed to the server and could not record becomes `unknown`',
      '(see `newsletter status`), everything else is sent by the next run.',
      'If this repeats, look for a long writer on the database (an import, a backup) or a server that restarts.',
    ],
  );
}

function describe(method: string): string {
  switch (method) {
    case 'claimBatch':
      return 'claim recipients';
    case 'recordOutcomes':
      return 'record what the server replied';
    case 'releaseClaims':
      return 'give back recipients it had not sent';
    case 'endRun':
      return 'close its run';
    default:
      return `reach the database (${method})`;
  }
}
