/**
 * The send path's ledger writes on a thread of their own.
 *
 * better-sqlite3 is synchronous: a claim (its candidate query, twenty inserts into a table with
 * five indexes, the commit and its fsync) and an outcome write stop the whole process while they
 * run, and with it the SMTP connections that carry the batches before. At the defaults that was
 * about a quarter of the sender's main thread, in stalls of a millisecond or more during which no
 * reply is read and no message written (bench/NOTES.md, "Issue 17 (session 6)"). On a thread of
 * its own, with its own connection to the same file (ledger-worker.ts), the ledger works while
 * the main thread talks SMTP, and the process uses a second core.
 *
 * Nothing else changes. The worker runs the very functions the store would (claim.ts, fence.ts),
 * one call at a time in the order asked; each call is one transaction, committed before its answer
 * comes back, so a claim is on disk before any of it is handed over, and everything the main
 * connection reads afterwards sees it (WAL: a read starts from the last commit). The two
 * connections take SQLite's one write lock in turn, as two processes would. An error comes back
 * with its name, message and code, so that a busy database is waited out (src/store/transient.ts)
 * exactly as before.
 *
 * `send-due` asks for it only at high rates (src/cli/commands/send-due.ts: its start costs ~75 ms
 * of CPU, and a slow send leaves the main thread idle anyway). It starts at the first claim (a run
 * that never claims never pays for it) and is unreferenced while no call is waiting, so it never
 * keeps a finished process alive.
 */
import { Worker } from 'node:worker_threads';
import type { OutcomeWrite } from '../../domain/ledger.js';
import type { Millis } from '../../domain/types.js';
import type { ClaimRequest, ClaimResult, RecordedOutcomes } from '../../engine/store.js';

export interface LedgerThreadOptions {
  file: string;
  busyTimeoutMs: number;
}

export type LedgerCall = { id: number } & (
  | { method: 'claimBatch'; args: [ClaimRequest] }
  | { method: 'recordOutcomes'; args: [runId: number, writes: OutcomeWrite[], now: Millis] }
  | { method: 'releaseClaims'; args: [runId: number, deliveryIds: number[], now: Millis] }
  | { method: 'settings'; args: [] }
  | { method: 'close'; args: [] }
);

/** How the thread's own connection commits (test/integration/sqlite-ledger-thread.test.ts). */
export interface LedgerSettings {
  journalMode: string;
  /** 2 is FULL: every commit, a claim's included, is fsynced before it returns. */
  synchronous: number;
}

export type LedgerReply =
  | { id: number; value: unknown; error?: undefined }
  | { id: number; error: { name: string; message: string; code: string | undefined } };

type Waiting = { resolve: (value: unknown) => void; reject: (error: Error) => void };

export class LedgerThread {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 1;
  /** Set once the thread is gone (it failed, or was closed): every later call gets this error. */
  private gone: Error | null = null;
  private closing = false;

  /** Whether the thread came up with its connection open (see `started`). */
  private readonly ready: Promise<boolean>;

  constructor(options: LedgerThreadOptions) {
    // No execArgv of the process's own (a preload given with --import or --require, --cpu-prof):
    // the thread runs our ledger code only.
    this.worker = new Worker(new URL('./ledger-worker.js', import.meta.url), {
      workerData: options,
      execArgv: [],
    });
    this.worker.unref();
    this.ready = new Promise((resolve) => {
      this.worker.once('message', () => resolve(true));
      this.worker.once('error', () => resolve(false));
      this.worker.once('exit', () => resolve(false));
    });
    this.worker.on('message', (reply: LedgerReply | { ready: true }) => {
      if ('id' in reply) this.answer(reply);
    });
    this.worker.on('error', (error) => this.fail(error));
    this.worker.on('exit', (code) => this.fail(new Error(`the ledger thread stopped (exit code ${code})`)));
  }

  /**
   * Resolves true once the thread has opened its connection, false if it could not start (a
   * preload from NODE_OPTIONS that only a main thread may run, a missing file): then nothing was
   * asked of it, and the store does the work on its own connection instead (sqlite-store.ts).
   */
  started(): Promise<boolean> {
    this.worker.ref();
    return this.ready.finally(() => {
      if (this.waiting.size === 0 && !this.closing) this.worker.unref();
    });
  }

  claimBatch(request: ClaimRequest): Promise<ClaimResult> {
    return this.call({ id: 0, method: 'claimBatch', args: [request] }) as Promise<ClaimResult>;
  }

  recordOutcomes(runId: number, writes: OutcomeWrite[], now: Millis): Promise<RecordedOutcomes> {
    return this.call({
      id: 0,
      method: 'recordOutcomes',
      args: [runId, writes, now],
    }) as Promise<RecordedOutcomes>;
  }

  releaseClaims(runId: number, deliveryIds: number[], now: Millis): Promise<number> {
    return this.call({ id: 0, method: 'releaseClaims', args: [runId, deliveryIds, now] }) as Promise<number>;
  }

  settings(): Promise<LedgerSettings> {
    return this.call({ id: 0, method: 'settings', args: [] }) as Promise<LedgerSettings>;
  }

  /** Closes the thread's connection (after every call asked before) and ends the thread. */
  async close(): Promise<void> {
    if (this.gone) return;
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.closing = true;
    const closing = this.call({ id: 0, method: 'close', args: [] });
    // Referenced until it has exited: an unreferenced thread lets the process end while this
    // still waits, and the command's exit code with it.
    this.worker.ref();
    await closing.catch(() => undefined);
    await exited;
  }

  private call(call: LedgerCall): Promise<unknown> {
    if (this.gone) return Promise.reject(this.gone);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      if (this.waiting.size === 1) this.worker.ref();
      this.worker.postMessage({ ...call, id });
    });
  }

  private answer(reply: LedgerReply): void {
    const waiter = this.waiting.get(reply.id);
    if (!waiter) return;
    this.settle(reply.id);
    if (reply.error) waiter.reject(Object.assign(new Error(reply.error.message), reply.error));
    else waiter.resolve(reply.value);
  }

  private fail(error: Error): void {
    this.gone ??= error;
    for (const [id, waiter] of this.waiting) {
      this.settle(id);
      waiter.reject(error);
    }
  }

  private settle(id: number): void {
    this.waiting.delete(id);
    if (this.waiting.size === 0 && !this.closing) this.worker.unref();
  }
}
