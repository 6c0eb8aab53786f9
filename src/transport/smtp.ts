/**
 * SMTP: a pool of our own pipelining connections (smtp-session.ts), each message handed over as
 * the pieces mime.ts builds from encodings prepared once per newsletter, which the connection
 * copies into a buffer it reuses (write-buffers.ts).
 *
 * The phase of every message is tracked where its bytes are written: `before-data` until the
 * message is handed to the socket after the server's 354, `data-sent` from then on. A failure
 * before it cannot have been accepted (`retry`); a failure after it without a 4xx/5xx reply may
 * have been (`unknown`). A connection that fails takes every message on it down, each with its own
 * phase: with pipelining that can be one `data-sent` (waiting for its final reply) and one
 * `before-data` (its envelope written behind the first one's "."). The engine keeps three
 * messages per connection in flight (`maxInFlight` below): those two on the wire, and a third
 * waiting in the pool's queue to follow the next "." (withdrawn untried when a reply stops the
 * run).
 *
 * The pool never resends a message on its own: a failed transaction is reported, and the ledger
 * decides (DESIGN, "SMTP outcomes"). A connection that cannot be opened fails the message that has
 * waited longest, so a dead server cannot make the pool retry for ever.
 *
 * SMTPUTF8: a message whose envelope has a non-ASCII local part goes only over a connection whose
 * server offers SMTPUTF8 (RFC 6531); otherwise it fails at once, with a reason an operator can act
 * on, and nothing of it is sent.
 */
import { hostname } from 'node:os';
import { classifySmtpFailure, classifySuccess, type SmtpFailure } from '../domain/outcome.js';
import { defaultSmtpTlsPolicy, type SmtpTlsPolicy } from '../domain/smtp-tls-policy.js';
import { describeTransport, type TransportSpec } from '../domain/transport-spec.js';
import type { SendOutcome } from '../domain/types.js';
import type { OutgoingMessage } from '../domain/message.js';
import type { SendOptions, Transport, TransportVerification } from '../engine/ports.js';
import { TransportCheckError } from './check-error.js';
import {
  type ComposeOptions,
  composePieces,
  type Envelope,
  envelopeOf,
  needsSmtpUtf8,
  wireEnvelope,
} from './compose.js';
import { isDotSafe, type Piece } from './mime.js';
import { SmtpError } from './smtp-errors.js';
import { type Phase, SmtpSession, type SessionOptions, type Transaction } from './smtp-session.js';

export type SmtpSpec = Extract<TransportSpec, { kind: 'smtp' }>;

export interface SmtpOptions extends ComposeOptions {
  /** Connections the pool may open at once. Default 5. */
  maxConnections?: number;
  /**
   * Messages per connection before it is closed and replaced (some servers limit it; Exim's
   * default is 1000). Its successor opens when 90 % are given, so no message waits for a greeting:
   * for that moment there is one connection more than `maxConnections`. Default 1000.
   */
  maxMessagesPerConnection?: number;
  /** Connect, greeting and socket-inactivity timeout, in ms. Default 60 s. */
  timeoutMs?: number;
  /** Overrides of `timeoutMs` for one of the three. */
  connectionTimeoutMs?: number;
  greetingTimeoutMs?: number;
  socketTimeoutMs?: number;
  /**
   * Upper bound of one message, waiting for a connection included, in ms: catches a server that
   * trickles bytes forever, which no inactivity timeout sees. Default 10 minutes.
   */
  messageTimeoutMs?: number;
  /**
   * NEWSLETTER_SMTP_TLS. Default: `required` with a password, else `opportunistic`. Whatever it
   * is, a password is only ever sent over TLS (smtp-session.ts).
   */
  tlsPolicy?: SmtpTlsPolicy | null;
  /** Older spellings of the policy: `requireTLS` is `required`, `ignoreTLS` is `none`. */
  requireTLS?: boolean;
  ignoreTLS?: boolean;
  /** NEWSLETTER_SMTP_CA: a private CA (PEM text) trusted besides the system's. */
  ca?: string | null;
  /** The EHLO name; the host name by default. */
  name?: string;
}

const DEFAULT_TIMEOUT_MS = 60_000;
const DEFAULT_MESSAGE_TIMEOUT_MS = 10 * 60_000;

type PoolResult =
  | { kind: 'done'; ok: true; response: string }
  | { kind: 'done'; ok: false; error: SmtpError; phase: Phase }
  | { kind: 'no-smtputf8' }
  | { kind: 'withdrawn'; reply: string };

export function createSmtpTransport(spec: SmtpSpec, options: SmtpOptions = {}): Transport {
  const timeout = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const secrets = spec.password ? [spec.password] : [];
  const policy = tlsPolicyOf(spec, options);
  const session: SessionOptions = {
    host: spec.host,
    port: spec.port,
    secure: spec.secure,
    requireTLS: policy === 'required',
    ignoreTLS: policy === 'none',
    ca: options.ca ?? null,
    name: (options.name ?? defaultName()).replace(/[\r\n]/g, ''),
    auth:
      spec.user !== null || spec.password !== null
        ? { user: spec.user ?? '', pass: spec.password ?? '' }
        : null,
    connectionTimeoutMs: options.connectionTimeoutMs ?? timeout,
    greetingTimeoutMs: options.greetingTimeoutMs ?? timeout,
    socketTimeoutMs: options.socketTimeoutMs ?? timeout,
  };
  const maxConnections = Math.max(1, options.maxConnections ?? 5);
  const pool = new SmtpPool(session, maxConnections, options.maxMessagesPerConnection ?? 1000);
  const messageTimeoutMs = options.messageTimeoutMs ?? DEFAULT_MESSAGE_TIMEOUT_MS;

  /** One connection, opened as far as a send would (TLS, AUTH), then closed: nothing is sent. */
  const inspect = async (): Promise<TransportVerification> => {
    const probe = new SmtpSession(session);
    try {
      await probe.open(() => undefined);
      const tls = probe.peerTls;
      probe.quit();
      return { tls, authenticated: session.auth !== null, tlsPolicy: policy };
    } catch (error) {
      const outcome = classifySmtpFailure(failureOf(error), 'before-data', secrets);
      throw new TransportCheckError(
        `SMTP check of ${describeTransport(spec)} failed: ${outcome.reply}`,
        outcome,
      );
    }
  };

  const outcomeOf = (result: PoolResult, envelope: Envelope): SendOutcome => {
    if (result.kind === 'no-smtputf8') return noSmtpUtf8(envelope, spec);
    if (result.kind === 'withdrawn') return withdrawnOutcome();
    if (result.ok) return classifySuccess(result.response);
    return classifySmtpFailure(failureOf(result.error), result.phase, secrets);
  };

  return {
    kind: 'smtp',
    // Per connection: one message waiting for its final reply, one for its envelope replies, and
    // one ready to follow the next "." without waiting for the engine.
    maxInFlight: 3 * maxConnections,

    // Not an async function: an unsigned message is composed synchronously, and its outcome is
    // one `then` away from the pool's answer (each `await` costs the main thread per message,
    // issue 17). It still always answers with a promise, a thrown error as a rejection.
    send(message: OutgoingMessage, sendOptions?: SendOptions): Promise<SendOutcome> {
      try {
        if (sendOptions?.signal?.aborted) return Promise.resolve(withdrawnOutcome());
        const envelope = envelopeOf(message);
        const smtpUtf8 = needsSmtpUtf8(envelope);
        const submit = (chunks: Piece[]): Promise<SendOutcome> => {
          const wire = wireEnvelope(envelope, smtpUtf8);
          return pool
            .submit(
              { from: wire.from, to: wire.to[0] ?? '', smtpUtf8, chunks, dotSafe: isDotSafe(chunks) },
              messageTimeoutMs,
              sendOptions?.signal,
            )
            .then((result) => outcomeOf(result, envelope));
        };
        let composed: Piece[] | Promise<Piece[]>;
        try {
          composed = composePieces(message, options);
        } catch (error) {
          return Promise.resolve(notBuilt(error));
        }
        if (Array.isArray(composed)) return submit(composed);
        return composed.then(submit, (error: unknown) => notBuilt(error));
      } catch (error) {
        return Promise.reject(error);
      }
    },

    async verify(): Promise<void> {
      await inspect();
    },

    inspect,

    close: () => pool.close(),
  };
}

interface Job {
  transaction: Transaction;
  session: SmtpSession | null;
  /** When the message timeout fails it (`performance.now()` time). */
  deadline: number;
  signal: AbortSignal | null;
  settle(result: PoolResult): void;
}

/**
 * Up to `max` connections take messages (plus, briefly, the successor of one that is about to
 * retire). A message waits in `queue` until a connection can take it; a connection can while no
 * envelope of its own is waiting for replies. Connections are opened for waiting messages, never
 * more than the messages waiting.
 */
class SmtpPool {
  private readonly open = new Set<SmtpSession>();
  private readonly opening = new Set<SmtpSession>();
  private readonly given = new Map<SmtpSession, number>();
  private readonly queue: Job[] = [];
  private closed = false;
  private pumping = false;
  private again = false;
  private held = false;
  private readonly watched = new WeakSet<AbortSignal>();
  /** Every message submitted and not yet settled, in the order submitted: what `deadlines` watches. */
  private readonly live = new Set<Job>();
  /**
   * One timer for every message's timeout instead of one per message (a setTimeout and a
   * clearTimeout for each of them, issue 17): armed for the earliest deadline when it is set, and
   * left alone as messages settle. When it fires, whatever is past its deadline fails, and it is
   * armed again for the earliest one left; it is cleared once no message is left.
   */
  private deadlines: NodeJS.Timeout | null = null;
  /** The deadline `deadlines` was armed for. */
  private armedFor = Number.POSITIVE_INFINITY;

  constructor(
    private readonly options: SessionOptions,
    private readonly max: number,
    private readonly perConnection: number,
  ) {}

  /**
   * Queues one message. If `signal` aborts while it still waits (the engine stops the run on
   * another message's reply), it comes back `withdrawn`, untried; once written, it runs its course.
   */
  submit(
    fields: Pick<Transaction, 'from' | 'to' | 'smtpUtf8' | 'chunks' | 'dotSafe'>,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<PoolResult> {
    return new Promise((resolve) => {
      let settled = false;
      const job: Job = {
        session: null,
        deadline: performance.now() + timeoutMs,
        signal: null,
        transaction: {
          from: fields.from,
          to: fields.to,
          smtpUtf8: fields.smtpUtf8,
          chunks: fields.chunks,
          dotSafe: fields.dotSafe,
          phase: 'before-data',
          done: (result) => {
            if (result.ok) return job.settle({ kind: 'done', ok: true, response: result.response });
            if (result.unsent && !this.closed) {
              // Provably not delivered, and lost with another message's connection: again, first
              // in line. Each time costs that other message (it ends `unknown`), so this ends.
              job.session = null;
              job.transaction.phase = 'before-data';
              this.queue.unshift(job);
              this.holdAfterFailure();
              return;
            }
            job.settle({ kind: 'done', ok: false, error: result.error, phase: job.transaction.phase });
          },
        },
        settle: (result) => {
          if (settled) return;
          settled = true;
          this.live.delete(job);
          if (this.live.size === 0) this.disarm();
          const index = this.queue.indexOf(job);
          if (index !== -1) this.queue.splice(index, 1);
          resolve(result);
          if (result.kind === 'done' && !result.ok) this.holdAfterFailure();
          else this.pump();
        },
      };
      if (signal) this.watch(signal);
      job.signal = signal ?? null;
      this.live.add(job);
      if (job.deadline < this.armedFor) this.arm(job.deadline);
      if (this.closed) {
        job.settle({ kind: 'done', ok: false, error: closedError(), phase: 'before-data' });
        return;
      }
      this.queue.push(job);
      this.pump();
    });
  }

  /** One listener per signal (the engine gives the same one to a whole batch). */
  private watch(signal: AbortSignal): void {
    if (this.watched.has(signal)) return;
    this.watched.add(signal);
    signal.addEventListener(
      'abort',
      () => {
        for (const job of [...this.queue]) {
          if (job.signal === signal) job.settle({ kind: 'withdrawn', reply: WITHDRAWN });
        }
      },
      { once: true },
    );
  }

  /**
   * After a failure nothing new goes out until the event loop has turned once: the failed
   * message's sender classifies it first (microtasks), and if the run must stop, `withdraw()`
   * empties the queue before a waiting message could reach the server.
   */
  private holdAfterFailure(): void {
    if (this.held) return;
    this.held = true;
    setImmediate(() => {
      this.held = false;
      this.pump();
    });
  }

  /** Hands waiting messages to connections that can take them; opens connections if needed. */
  private pump(): void {
    if (this.held) return;
    // Settling a message pumps again; one loop at a time, repeated while something changed.
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.again = false;
        this.pumpOnce();
      } while (this.again);
    } finally {
      this.pumping = false;
    }
  }

  private pumpOnce(): void {
    while (this.queue.length > 0) {
      const session = this.ready();
      if (!session) break;
      const job = this.queue.shift() as Job;
      if (job.signal?.aborted) {
        job.settle({ kind: 'withdrawn', reply: WITHDRAWN });
        continue;
      }
      if (job.transaction.smtpUtf8 && !session.extensions.has('SMTPUTF8')) {
        job.settle({ kind: 'no-smtputf8' });
        continue;
      }
      job.session = session;
      const given = (this.given.get(session) ?? 0) + 1;
      this.given.set(session, given);
      session.send(job.transaction);
      // Its successor is opened while it still works: a server's greeting can take a while
      // (smtp-server waits 100 ms for early talkers, postscreen seconds), and messages would wait.
      if (given === Math.ceil(this.perConnection * 0.9) && given < this.perConnection) this.connect(true);
    }
    while (!this.closed && this.opening.size < this.queue.length && this.accepting() < this.max) {
      this.connect();
    }
    for (const session of this.open) {
      if (!session.busy && (this.given.get(session) ?? 0) >= this.perConnection) session.quit();
    }
  }

  private ready(): SmtpSession | null {
    for (const session of this.open) {
      if (session.canTake && (this.given.get(session) ?? 0) < this.perConnection) return session;
    }
    return null;
  }

  /** Connections open or opening that will still take messages. */
  private accepting(): number {
    let count = this.opening.size;
    for (const session of this.open) if ((this.given.get(session) ?? 0) < this.perConnection) count += 1;
    return count;
  }

  /** `spare`: a successor opened ahead of time; if it cannot open, no message is failed for it. */
  private connect(spare = false): void {
    if (this.closed) return;
    const session = new SmtpSession(this.options);
    this.opening.add(session);
    session.onIdle = () => this.pump();
    session
      .open(() => {
        this.open.delete(session);
        this.given.delete(session);
        this.pump();
      })
      .then(
        () => {
          this.opening.delete(session);
          if (this.closed) return session.quit();
          this.open.add(session);
          this.pump();
        },
        (error: unknown) => {
          this.opening.delete(session);
          // The message that has waited longest gets the reason; the others may get a connection.
          const job = spare ? undefined : this.queue.shift();
          job?.settle({ kind: 'done', ok: false, error: asSmtpError(error), phase: 'before-data' });
          this.pump();
        },
      );
  }

  private arm(deadline: number): void {
    if (this.deadlines) clearTimeout(this.deadlines);
    this.armedFor = deadline;
    // Rounded up: a timer may fire up to a millisecond early by this clock, and `expire` would
    // then only arm it again.
    this.deadlines = setTimeout(() => this.expire(), Math.max(1, Math.ceil(deadline - performance.now())));
  }

  private disarm(): void {
    if (this.deadlines) clearTimeout(this.deadlines);
    this.deadlines = null;
    this.armedFor = Number.POSITIVE_INFINITY;
  }

  /** Fails every message past its deadline (oldest first), then waits for the earliest left. */
  private expire(): void {
    this.deadlines = null;
    this.armedFor = Number.POSITIVE_INFINITY;
    const now = performance.now();
    const due: Job[] = [];
    for (const job of this.live) if (job.deadline <= now) due.push(job);
    // A job failed with another's connection is settled already: timedOut on it changes nothing.
    for (const job of due) if (this.live.has(job)) this.timedOut(job);
    let earliest = Number.POSITIVE_INFINITY;
    for (const job of this.live) if (job.deadline < earliest) earliest = job.deadline;
    if (earliest < this.armedFor && earliest !== Number.POSITIVE_INFINITY) this.arm(earliest);
  }

  private timedOut(job: Job): void {
    const error = new SmtpError('Message timeout', { code: 'ETIMEDOUT', command: 'DATA' });
    if (job.session) {
      // The connection cannot be trusted with anything else: every message on it fails, each
      // with its phase.
      job.session.abort(error);
      return;
    }
    const index = this.queue.indexOf(job);
    if (index !== -1) this.queue.splice(index, 1);
    job.settle({
      kind: 'done',
      ok: false,
      error: new SmtpError('no connection within the message timeout', {
        code: 'ETIMEDOUT',
        command: 'CONN',
      }),
      phase: 'before-data',
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) {
      job.settle({ kind: 'done', ok: false, error: closedError(), phase: 'before-data' });
    }
    const sessions = [...this.open];
    await Promise.all(
      sessions.map(
        (session) =>
          new Promise<void>((resolve) => {
            if (session.isClosed) return resolve();
            const wait = setInterval(() => {
              if (session.isClosed) {
                clearInterval(wait);
                resolve();
              }
            }, 10);
            session.quit();
          }),
      ),
    );
  }
}

const WITHDRAWN = "not sent: the run stopped on another message's reply before this one was tried";

function withdrawnOutcome(): SendOutcome {
  return { kind: 'withdrawn', reply: WITHDRAWN };
}

function notBuilt(error: unknown): SendOutcome {
  return { kind: 'failed', reply: `could not build the message: ${errorText(error)}`, suppress: false };
}

function closedError(): SmtpError {
  return new SmtpError('the transport was closed', { code: 'ECONNECTION', command: 'CONN' });
}

function asSmtpError(error: unknown): SmtpError {
  if (error instanceof SmtpError) return error;
  return new SmtpError(errorText(error), { code: 'ECONNECTION', command: 'CONN' });
}

function tlsPolicyOf(spec: SmtpSpec, options: SmtpOptions): SmtpTlsPolicy {
  if (options.tlsPolicy) return options.tlsPolicy;
  if (options.requireTLS) return 'required';
  if (options.ignoreTLS) return 'none';
  return defaultSmtpTlsPolicy(spec.password !== null);
}

/** nodemailer's choice: the host name when it is a FQDN, else [127.0.0.1]. */
function defaultName(): string {
  let name = '';
  try {
    name = hostname();
  } catch {
    name = '';
  }
  if (!name.includes('.')) return '[127.0.0.1]';
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(name) ? `[${name}]` : name;
}

function noSmtpUtf8(envelope: Envelope, spec: SmtpSpec): SendOutcome {
  const address = needsSmtpUtf8({ from: envelope.from, to: [] }) ? envelope.from : (envelope.to[0] ?? '');
  return {
    kind: 'failed',
    reply:
      `${address} has a non-ASCII local part, and ${spec.host}:${spec.port} does not offer SMTPUTF8 (RFC 6531): ` +
      'not sent; send through a server that offers SMTPUTF8, or use an ASCII address',
    suppress: false,
  };
}

/** The fields of an error that classification reads, without anything else. */
function failureOf(error: unknown): SmtpFailure {
  if (typeof error !== 'object' || error === null) return { message: String(error) };
  const e = error as Record<string, unknown>;
  const text = (key: string): string | undefined =>
    typeof e[key] === 'string' ? (e[key] as string) : undefined;
  return {
    code: text('code'),
    originalCode: text('originalCode'),
    responseCode: typeof e.responseCode === 'number' ? e.responseCode : undefined,
    response: text('response'),
    command: text('command'),
    message: text('message'),
  };
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
