/**
 * What a run of `send-due` is given: its options, the store, who and where it is, its clock, and
 * the heavy parts (render, transport) as loaders, so that an idle run never loads them. The CLI
 * builds these (src/cli/commands/send-due.ts); tests build them in-process
 * (test/helpers/engine-deps.ts).
 */
import type { Millis, Newsletter } from '../domain/types.js';
import type { EventSink } from './events.js';
import type { FailpointHook } from './failpoints.js';
import type { SendDueOptions } from './options.js';
import type { BuildBody, PreparePersonaliser, Transport } from './ports.js';
import type { StopController } from './stop.js';
import type { SendStore } from './store.js';

export interface RenderModule {
  buildBody: BuildBody;
  preparePersonaliser: PreparePersonaliser;
}

export interface RunLockHandle {
  readonly compromised: Error | null;
  release(): Promise<void>;
}

export interface SendDueDeps {
  options: SendDueOptions;
  store: SendStore;
  hostId: string;
  hostname: string;
  pid: number;
  /** Where `pid` means something (src/host/pid-scope.ts): a dead pid ends a run only in the same scope. */
  pidScope: string | null;
  now: () => Millis;
  /**
   * A clock that only moves forward, for the run's own view of its lease (lease-keeper.ts): the
   * CLI's is `performance.now()`, which a stepped wall clock does not move. Default: `now`, which
   * in-process tests move by hand.
   */
  monotonic?: (() => Millis) | undefined;
  stop: StopController;
  events: EventSink;
  /** Takes the run lock without waiting; null when another run holds it. */
  acquireLock: (onCompromised: (error: Error) => void) => Promise<RunLockHandle | null>;
  /** Is this process (on this host) still running? Used to end the runs of crashed processes at once. */
  isProcessAlive: (pid: number) => boolean;
  /** Loaded only when something is due: MJML and nodemailer are slow to load. */
  loadRender: () => Promise<RenderModule>;
  loadTransport: () => Promise<Transport>;
  maxMessages: number | null;
  maxSeconds: number | null;
  templatesRoot: (newsletter: Newsletter) => string;
  /** Called at each failpoint (failpoints.ts); none: the run never waits there. */
  at?: FailpointHook | undefined;
}
