/**
 * SMTP through nodemailer's pool, with the phase of every message tracked here.
 *
 * Why our own phase tracking: nodemailer reports most failures as command `CONN`, whether the
 * connection died during the envelope or after the final ".". Only the second may have been
 * delivered (`unknown`); the first is safe to retry. So each message goes out as `raw` bytes we
 * composed, and a 'stream' plugin wraps the very stream nodemailer pipes into the DATA
 * dot-stuffer: that stream is read only after the server's 354, and its 'end' fires once its
 * last byte has been handed over. The terminating "." is written only after that 'end', so a
 * failure before it cannot have been accepted (`before-data`); any failure after it without a
 * 4xx/5xx reply may have been (`data-sent` → unknown). Watching the raw input instead would be
 * wrong: nodemailer buffers it eagerly, before the envelope is even sent.
 *
 * `maxRequeues: 0`: the pool must never resend a message on its own; the ledger decides.
 *
 * SMTPUTF8: nodemailer sends a non-ASCII address whether or not the server offers SMTPUTF8 (RFC
 * 6531), and a server without it may mangle or bounce it later. So the first message that needs
 * it asks the server once, on a connection of its own, and every such message then fails at once,
 * with a reason an operator can act on, when the server does not offer it.
 */
import { PassThrough, type Readable, pipeline } from 'node:stream';
import nodemailer from 'nodemailer';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { classifySmtpFailure, classifySuccess, type SmtpFailure } from '../domain/outcome.js';
import { describeTransport, type TransportSpec } from '../domain/transport-spec.js';
import type { SendOutcome } from '../domain/types.js';
import type { OutgoingMessage, Transport } from '../engine/ports.js';
import { TransportCheckError } from './check-error.js';
import { type ComposeOptions, composeMessage, type Envelope, envelopeOf, needsSmtpUtf8 } from './compose.js';

export type SmtpSpec = Extract<TransportSpec, { kind: 'smtp' }>;

export interface SmtpOptions extends ComposeOptions {
  /** Connections the pool may open at once. Default 5. */
  maxConnections?: number;
  /** Connect, greeting and socket-inactivity timeout, in ms. Default 60 s. */
  timeoutMs?: number;
  /** Overrides of `timeoutMs` for one of the three. */
  connectionTimeoutMs?: number;
  greetingTimeoutMs?: number;
  socketTimeoutMs?: number;
  /**
   * Upper bound of one message, connection included, in ms: catches a server that trickles
   * bytes forever, which no inactivity timeout sees. Default 10 minutes.
   */
  messageTimeoutMs?: number;
  /** Refuse to send unless the server offers STARTTLS. Default false. */
  requireTLS?: boolean;
  /** Never use STARTTLS even when offered. Default false; never implied by a loopback host. */
  ignoreTLS?: boolean;
  tls?: { rejectUnauthorized?: boolean };
  /** The EHLO name; the host name by default. */
  name?: string;
}

const DEFAULT_TIMEOUT_MS = 60_000;
const DEFAULT_MESSAGE_TIMEOUT_MS = 10 * 60_000;

/** Tracks one message: set once the stream that feeds DATA has handed over its last byte. */
interface PhaseTracker {
  dataSent: boolean;
}

export function createSmtpTransport(spec: SmtpSpec, options: SmtpOptions = {}): Transport {
  const timeout = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const secrets = spec.password ? [spec.password] : [];
  // What a connection needs, shared by the pool and the SMTPUTF8 probe.
  const connection = {
    host: spec.host,
    port: spec.port,
    secure: spec.secure,
    connectionTimeout: options.connectionTimeoutMs ?? timeout,
    greetingTimeout: options.greetingTimeoutMs ?? timeout,
    socketTimeout: options.socketTimeoutMs ?? timeout,
    requireTLS: options.requireTLS ?? false,
    ignoreTLS: options.ignoreTLS ?? false,
    ...(options.tls ? { tls: { ...options.tls } } : {}),
    ...(options.name ? { name: options.name } : {}),
    logger: false,
  };
  const transporter = nodemailer.createTransport({
    pool: true,
    ...connection,
    ...(spec.user !== null || spec.password !== null
      ? { auth: { user: spec.user ?? '', pass: spec.password ?? '' } }
      : {}),
    maxConnections: options.maxConnections ?? 5,
    maxRequeues: 0,
    disableFileAccess: true,
    disableUrlAccess: true,
  });
  // Asked once per transport, when a message first needs it; a failed probe is asked again.
  let smtpUtf8: Promise<boolean | null> | null = null;
  const offersSmtpUtf8 = (): Promise<boolean | null> => {
    smtpUtf8 ??= probeSmtpUtf8(connection).catch((error: unknown) => {
      smtpUtf8 = null;
      throw error;
    });
    return smtpUtf8;
  };

  // Keyed by the raw Buffer, which nodemailer carries through untouched as `mail.data.raw`.
  const trackers = new WeakMap<object, PhaseTracker>();
  transporter.use('stream', (mail, done) => {
    const raw = mail.data.raw;
    const tracker = raw && typeof raw === 'object' ? trackers.get(raw) : undefined;
    if (tracker && mail.message) {
      mail.message.processFunc((input) => watchEnd(input, tracker));
    }
    done();
  });

  return {
    kind: 'smtp',

    async send(message: OutgoingMessage): Promise<SendOutcome> {
      const envelope = envelopeOf(message);
      if (needsSmtpUtf8(envelope)) {
        let offered: boolean | null;
        try {
          offered = await offersSmtpUtf8();
        } catch (error) {
          return classifySmtpFailure(failureOf(error), 'before-data', secrets);
        }
        if (offered === false) return noSmtpUtf8(envelope, spec);
      }
      let raw: Buffer;
      try {
        raw = await composeMessage(message, options);
      } catch (error) {
        return { kind: 'failed', reply: `could not build the message: ${errorText(error)}`, suppress: false };
      }
      const tracker: PhaseTracker = { dataSent: false };
      trackers.set(raw, tracker);
      const deadline = new AbortController();
      const timer = setTimeout(
        () => deadline.abort(),
        options.messageTimeoutMs ?? DEFAULT_MESSAGE_TIMEOUT_MS,
      );
      try {
        const info = await transporter.sendMail({
          raw,
          envelope,
          messageId: message.messageId,
          signal: deadline.signal,
        });
        return classifySuccess(String(info.response ?? ''));
      } catch (error) {
        return classifySmtpFailure(failureOf(error), tracker.dataSent ? 'data-sent' : 'before-data', secrets);
      } finally {
        clearTimeout(timer);
        trackers.delete(raw);
      }
    },

    async verify(): Promise<void> {
      try {
        await transporter.verify();
      } catch (error) {
        const outcome = classifySmtpFailure(failureOf(error), 'before-data', secrets);
        throw new TransportCheckError(
          `SMTP check of ${describeTransport(spec)} failed: ${outcome.reply}`,
          outcome,
        );
      }
    },

    async close(): Promise<void> {
      transporter.close();
    },
  };
}

/**
 * Whether the server lists SMTPUTF8 in its EHLO reply (after STARTTLS when it offers that), read
 * on a connection that sends nothing and quits. null when this nodemailer no longer exposes the
 * extension list: then the server decides, as it would without this check.
 */
async function probeSmtpUtf8(
  options: ConstructorParameters<typeof SMTPConnection>[0],
): Promise<boolean | null> {
  const probe = new SMTPConnection(options);
  try {
    await new Promise<void>((resolve, reject) => {
      // `on`, not `once`: a late error (the server hanging up on our QUIT) must find a listener.
      probe.on('error', reject);
      probe.connect((error) => (error ? reject(error) : resolve()));
    });
    // Not part of nodemailer's typed API; test/integration/transport-smtputf8.test.ts pins it down.
    const extensions = (probe as unknown as { _supportedExtensions?: unknown })._supportedExtensions;
    return Array.isArray(extensions) ? extensions.includes('SMTPUTF8') : null;
  } finally {
    probe.quit();
    probe.close();
  }
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

/**
 * Returns a stream of our own in place of the one nodemailer would pipe into DATA. Its 'end'
 * fires when the consumer (the dot-stuffer, only attached after 354) has read the last byte.
 */
function watchEnd(input: Readable, tracker: PhaseTracker): Readable {
  const output = new PassThrough();
  output.once('end', () => {
    tracker.dataSent = true;
  });
  pipeline(input, output, () => {
    // Errors reach the consumer through `output`; nothing else to do here.
  });
  return output;
}

/** The fields of a nodemailer error that classification reads, without anything else. */
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
