/**
 * SendDueDeps for in-process engine tests: a real store and configuration, a transport (one that
 * only records whom it was handed, or the real SMTP transport against test/helpers/smtp-sink.ts),
 * no run lock, every process alive, and failpoints a test can hold a run at (`FailpointHolds`).
 */
import { sendDueOptionsOf } from '../../src/cli/engine-options.js';
import type { Config } from '../../src/config.js';
import type { OutgoingMessage } from '../../src/domain/message.js';
import type { Millis, SendOutcome } from '../../src/domain/types.js';
import type { EventSink } from '../../src/engine/events.js';
import type { Failpoint, FailpointHook } from '../../src/engine/failpoints.js';
import type { Transport } from '../../src/engine/ports.js';
import type { RenderModule, RunLockHandle, SendDueDeps } from '../../src/engine/send-due.js';
import { StopController } from '../../src/engine/stop.js';
import type { SendStore } from '../../src/engine/store.js';
import { createTransport } from '../../src/transport/index.js';

const SENT: SendOutcome = { kind: 'sent', reply: '250 ok', queueId: null };

/** Pushes each message's recipient onto `handed`, then answers `reply(to)` (250 by default). */
export function recordingTransport(
  handed: string[],
  reply: (to: string) => SendOutcome = () => SENT,
): Transport {
  return {
    kind: 'count',
    async send(message: OutgoingMessage): Promise<SendOutcome> {
      handed.push(message.to);
      return reply(message.to);
    },
    async verify() {},
    async close() {},
  };
}

/** The real SMTP transport, built from the configuration as `send-due` builds it (DKIM aside). */
export async function smtpTransport(config: Config): Promise<Transport> {
  if (!config.transport) throw new Error('the test configuration has no NEWSLETTER_TRANSPORT');
  return createTransport(config.transport, {
    maxConnections: config.connections,
    timeoutMs: config.smtpTimeoutMs,
    tlsPolicy: config.smtpTls.policy,
    ca: config.smtpTls.ca?.pem ?? null,
  });
}

/** For runs where nothing is due: a build would be a bug; a message is the stored body as it is. */
export const storedBodyRender: RenderModule = {
  buildBody: async () => {
    throw new Error('nothing is due: no build expected');
  },
  preparePersonaliser: (body) => (recipient) => ({
    messageId: recipient.messageId,
    from: body.from,
    to: recipient.email,
    subject: body.subject,
    html: body.html,
    text: body.text,
    headers: {},
  }),
};

/** A lock that is always free; `compromise` plays proper-lockfile finding it taken or removed. */
export function testLock(): {
  acquireLock: SendDueDeps['acquireLock'];
  compromise: (error: Error) => void;
} {
  let onCompromised: ((error: Error) => void) | null = null;
  return {
    acquireLock: async (callback): Promise<RunLockHandle> => {
      onCompromised = callback;
      return { compromised: null, release: async () => undefined };
    },
    compromise: (error) => {
      if (!onCompromised) throw new Error('the run has not taken the lock yet');
      onCompromised(error);
    },
  };
}

export function engineDeps(options: {
  config: Config;
  store: SendStore;
  transport: Transport;
  hostId: string;
  hostname?: string;
  now?: () => Millis;
  render?: RenderModule;
  maxMessages?: number | null;
  maxSeconds?: number | null;
  templatesRoot?: string;
  stop?: StopController;
  events?: EventSink;
  acquireLock?: SendDueDeps['acquireLock'];
  at?: FailpointHook;
}): SendDueDeps {
  const render = options.render ?? storedBodyRender;
  return {
    options: sendDueOptionsOf(options.config),
    store: options.store,
    hostId: options.hostId,
    hostname: options.hostname ?? 'test',
    pid: process.pid,
    pidScope: 'test-boot test-pid-namespace',
    now: options.now ?? Date.now,
    stop: options.stop ?? new StopController(),
    events: options.events ?? (() => undefined),
    acquireLock: options.acquireLock ?? (async () => ({ compromised: null, release: async () => undefined })),
    isProcessAlive: () => true,
    loadRender: async () => render,
    loadTransport: async () => options.transport,
    maxMessages: options.maxMessages ?? null,
    maxSeconds: options.maxSeconds ?? null,
    templatesRoot: () => options.templatesRoot ?? '/nonexistent',
    at: options.at,
  };
}

/** A promise with its resolve at hand, as graphile-worker's `deferred()`. */
export interface Deferred<T = void> {
  promise: Promise<T>;
  resolve(value: T): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** A run held at a failpoint: `reached` resolves once it waits there; `release()` lets it go on. */
export interface Held {
  reached: Promise<void>;
  release(): void;
}

/**
 * The engine's failpoint hook for in-process tests. `hold(point, nth)` makes the run wait at the
 * nth time it reaches `point` (the first by default) until the test releases it; `run(point, fn)`
 * does `fn` there (and the run waits for it). Events are ordered by these promises, never by time.
 */
export class FailpointHolds {
  private readonly hits = new Map<Failpoint, number>();
  private readonly actions = new Map<string, () => Promise<void>>();

  readonly hook: FailpointHook = async (point) => {
    const count = (this.hits.get(point) ?? 0) + 1;
    this.hits.set(point, count);
    await this.actions.get(`${point}@${count}`)?.();
  };

  hold(point: Failpoint, nth = 1): Held {
    const reached = deferred();
    const released = deferred();
    this.actions.set(`${point}@${nth}`, async () => {
      reached.resolve();
      await released.promise;
    });
    return { reached: reached.promise, release: () => released.resolve() };
  }

  run(point: Failpoint, action: () => void | Promise<void>, nth = 1): void {
    this.actions.set(`${point}@${nth}`, async () => {
      await action();
    });
  }

  /** How many times the run has reached `point` so far. */
  count(point: Failpoint): number {
    return this.hits.get(point) ?? 0;
  }
}
