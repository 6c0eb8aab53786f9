/**
 * One SMTP connection (RFC 5321) that pipelines (RFC 2920): connect (TLS from the start, or
 * STARTTLS when offered), EHLO, AUTH, then mail transactions, each written as one group
 * (MAIL FROM, RCPT TO, DATA) and, once the server says 354, the message, the final "." and the
 * next transaction's group in one write. A message costs one round trip, and a connection holds
 * at most two: one waiting for its final reply, one for its envelope replies.
 *
 * Why our own client: each message's outcome depends on how far it got, and only the client that
 * writes the bytes knows exactly. A transaction is `before-data` until the moment its message
 * is handed to the socket, `data-sent` from then on; a connection that fails or times out fails
 * every transaction on it with its own phase: `data-sent` without a reply may have been
 * delivered (`unknown`), `before-data` cannot have been (`retry`). Replies are matched to
 * commands in order, so a reply always lands on the transaction it belongs to.
 *
 * Credentials only ever cross an encrypted connection: with `auth`, a connection that is not TLS
 * (smtps://, or STARTTLS that succeeded) stops before AUTH, whatever the TLS policy. An attacker
 * on the path can strip STARTTLS from the EHLO reply; the password must not be what they gain.
 *
 * Errors carry nodemailer's vocabulary (code ECONNECTION/ETIMEDOUT/EAUTH/ETLS/EPROTOCOL,
 * responseCode, response, command), which src/domain/outcome.ts classifies.
 */
import { createHmac } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { specialUseLookup } from './special-use-lookup.js';
import {
  authError,
  connectionClosed,
  connectionError,
  plainTextRefused,
  type Reply,
  replyError,
  SmtpError,
} from './smtp-errors.js';
import { type PeerTls, peerTlsOf, tlsConnectOptions } from './smtp-tls.js';
import type { Piece } from './mime.js';
import { type ReadCallback, utf8Reads } from './utf8-reads.js';
import { type Gathered, WriteBuffers } from './write-buffers.js';

export interface SessionOptions {
  host: string;
  port: number;
  /** TLS from the first byte (smtps). */
  secure: boolean;
  /** Refuse to go on without STARTTLS. */
  requireTLS: boolean;
  /** Never STARTTLS, even when offered. */
  ignoreTLS: boolean;
  /** A private CA (PEM) trusted besides the system's: NEWSLETTER_SMTP_CA. */
  ca: string | null;
  /** The EHLO name. */
  name: string;
  auth: { user: string; pass: string } | null;
  connectionTimeoutMs: number;
  greetingTimeoutMs: number;
  /** Inactivity while something is awaited from the server. */
  socketTimeoutMs: number;
}

export type Phase = 'before-data' | 'data-sent';

/** One message for one recipient. The session fills in `phase` and calls `done` exactly once. */
export interface Transaction {
  from: string;
  to: string;
  smtpUtf8: boolean;
  /** The message (mime.ts's pieces: strings go out as UTF-8); dot-stuffed here when it needs it. */
  chunks: readonly Piece[];
  /** Known to have no line that starts with "." (mime.ts's messages): no need to look. */
  dotSafe: boolean;
  phase: Phase;
  done(result: TransactionResult): void;
}

/**
 * `unsent`: the connection was lost while this transaction's envelope waited behind another
 * message's data: its own data was never written, so it provably was not delivered, and the loss
 * is most likely the other message's. It may go again on another connection.
 */
export type TransactionResult =
  | { ok: true; response: string }
  | { ok: false; error: SmtpError; unsent?: boolean };

/** A transaction on this connection, with the first refusal the server gave it. */
interface Active {
  transaction: Transaction;
  failure: SmtpError | null;
}

interface Expected {
  command: string;
  handle(reply: Reply): void;
}

const DOT = Buffer.from('.\r\n');
const CRLF_DOT = Buffer.from('\r\n.\r\n');
const LF_DOT = Buffer.from('\n.');
/** Room kept after a gathered message for its final "." and the next envelope (one write). */
const ENVELOPE_ROOM = 1024;
/** What a plain connection reads into (`onread`): replies are short, a pipelined batch is a few kB. */
const READ_BUFFER_BYTES = 16 * 1024;

export class SmtpSession {
  /** EHLO keywords, upper-case (`PIPELINING`, `SMTPUTF8`, `AUTH`, …). */
  readonly extensions = new Set<string>();
  private authMethods: string[] = [];
  private socket: net.Socket | tls.TLSSocket | null = null;
  private buffered = '';
  private readonly buffers = new WriteBuffers();
  private lines: string[] = [];
  private expected: Expected[] = [];
  /** Transactions written and not yet done, oldest first. */
  private inFlight: Active[] = [];
  /** The transaction whose envelope is on the wire: no other may be written before its 354. */
  private envelope: Active | null = null;
  private needsReset = false;
  private closed = false;
  private quitting = false;
  private onClose: ((error: SmtpError | null) => void) | null = null;
  /** The socket's inactivity timeout as last set (0: none; -1: not set on this socket yet). */
  private timeoutMs = -1;
  /**
   * A message gathered and not yet written: what is written until the end of this tick (the final
   * ".", the next envelope) is appended to it, and it goes in one socket write (`flush`).
   */
  private pending: Gathered | null = null;
  private readonly flush = (): void => {
    const pending = this.pending;
    if (!pending) return;
    this.pending = null;
    this.socket?.write(pending.bytes, pending.written);
  };
  /** The reads of a plain connection, without the stream machinery (`connect`); null: a stream's. */
  private reads: ReadCallback | null = null;

  constructor(private readonly options: SessionOptions) {}

  /** What the server's TLS showed, once open; null: the connection is not encrypted. */
  get peerTls(): PeerTls | null {
    return this.socket instanceof tls.TLSSocket ? peerTlsOf(this.socket) : null;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Ready for another transaction: connected, and no envelope waiting for its replies. */
  get canTake(): boolean {
    return !this.closed && !this.quitting && this.socket !== null && this.envelope === null;
  }

  get busy(): boolean {
    return this.inFlight.length > 0;
  }

  /**
   * Connects and gets through greeting, EHLO, STARTTLS and AUTH. Rejects with an SmtpError.
   * `onClose` is called once, when a connection that opened closes (not for a failed open).
   */
  async open(onClose: (error: SmtpError | null) => void): Promise<void> {
    await this.connect();
    await this.expect('CONN', this.options.greetingTimeoutMs, 220);
    await this.hello();
    if (!(this.socket instanceof tls.TLSSocket)) {
      const offered = this.extensions.has('STARTTLS');
      if (offered && !this.options.ignoreTLS) {
        this.write('STARTTLS\r\n');
        await this.expect('STARTTLS', this.options.socketTimeoutMs, 220);
        await this.upgrade();
        await this.hello();
      } else if (this.options.auth || this.options.requireTLS) {
        throw this.fail(plainTextRefused(this.options, offered));
      }
    }
    if (this.options.auth) await this.authenticate(this.options.auth);
    this.idleTimeout(0);
    if (this.closed) throw connectionClosed('CONN');
    this.onClose = onClose;
  }

  /** Writes a transaction's envelope (pipelined when the server allows it). */
  send(transaction: Transaction): void {
    if (!this.canTake) throw new Error('SmtpSession.send: not ready');
    const active: Active = { transaction, failure: null };
    this.envelope = active;
    this.inFlight.push(active);
    this.idleTimeout(this.options.socketTimeoutMs);
    const mail = `MAIL FROM:<${transaction.from}>${transaction.smtpUtf8 ? ' SMTPUTF8' : ''}\r\n`;
    const rcpt = `RCPT TO:<${transaction.to}>\r\n`;
    const refused = (command: string, reply: Reply): void => {
      active.failure ??= replyError(command, reply);
    };
    // The envelope was refused: nothing was sent; the next transaction starts with RSET.
    const abandon = (): void => {
      this.needsReset = true;
      this.envelope = null;
      this.finish(active, null);
      this.emitIdle();
    };
    const onData = (reply: Reply): void => {
      if (reply.code !== 354) {
        refused('DATA', reply);
        abandon();
        return;
      }
      if (active.failure) {
        // A server that says 354 after refusing the envelope: end an empty message, ignore it.
        this.expected.push({ command: 'DATA', handle: () => undefined });
        this.write(DOT);
        abandon();
        return;
      }
      this.writeMessage(active);
    };
    let reset = '';
    if (this.needsReset) {
      this.needsReset = false;
      reset = 'RSET\r\n';
      this.expected.push({ command: 'RSET', handle: () => undefined });
    }
    if (this.extensions.has('PIPELINING')) {
      this.expected.push(
        { command: 'MAIL FROM', handle: (reply) => reply.code !== 250 && refused('MAIL FROM', reply) },
        { command: 'RCPT TO', handle: (reply) => !isPositive(reply) && refused('RCPT TO', reply) },
        { command: 'DATA', handle: onData },
      );
      this.write(`${reset}${mail}${rcpt}DATA\r\n`);
      return;
    }
    // One command at a time: each goes out after the reply to the one before.
    const step = (command: string, line: string, next: (reply: Reply) => void): void => {
      this.expected.push({ command, handle: next });
      this.write(line);
    };
    if (reset) this.write(reset);
    step('MAIL FROM', mail, (reply) => {
      if (reply.code !== 250) {
        refused('MAIL FROM', reply);
        abandon();
        return;
      }
      step('RCPT TO', rcpt, (reply) => {
        if (!isPositive(reply)) {
          refused('RCPT TO', reply);
          abandon();
          return;
        }
        step('DATA', 'DATA\r\n', onData);
      });
    });
  }

  /** QUIT, then close; in-flight transactions fail as the connection goes. */
  quit(): void {
    if (this.quitting) return;
    this.quitting = true;
    if (this.closed || !this.socket) {
      this.destroy(null);
      return;
    }
    this.expected.push({ command: 'QUIT', handle: () => this.destroy(null) });
    this.write('QUIT\r\n');
    // A server that does not answer QUIT is not waited for.
    setTimeout(() => this.destroy(null), 1000).unref();
  }

  /** Fails every transaction on this connection (each with its phase) and closes it. */
  abort(error: SmtpError): void {
    this.destroy(error);
  }

  // ---- the message ------------------------------------------------------------------------------

  private writeMessage(active: Active): void {
    const socket = this.socket;
    if (!socket) return;
    const { transaction } = active;
    // One buffer: copying ~50 kB costs less than a socket write per piece (bench/, docs/benchmarks.md).
    // A dot-safe message is copied into a buffer reused once its write is done (write-buffers.ts).
    let data: Buffer;
    let written: ((error?: Error | null) => void) | undefined;
    let gathered: Gathered | undefined;
    const { chunks } = transaction;
    if (chunks.length === 1 && typeof chunks[0] !== 'string') data = chunks[0] as Buffer;
    else if (transaction.dotSafe) {
      gathered = this.buffers.gather(chunks, ENVELOPE_ROOM);
      ({ bytes: data, written } = gathered);
    } else
      data = Buffer.concat(chunks.map((piece) => (typeof piece === 'string' ? Buffer.from(piece) : piece)));
    if (!transaction.dotSafe && (data[0] === 0x2e || data.indexOf(LF_DOT) !== -1)) data = dotStuff(data);
    // From here on the server may get the whole message: a failure without a reply is `unknown`.
    transaction.phase = 'data-sent';
    const end = data[data.length - 1] === 0x0a ? '.\r\n' : '\r\n.\r\n';
    if (gathered?.append(end)) {
      // One socket write for the message, its "." and the next envelope (written during this tick,
      // `write`): cheaper than cork, three writes and a writev (issue 17).
      this.pending = gathered;
      process.nextTick(this.flush);
    } else {
      socket.cork();
      socket.write(data, written);
      socket.write(end === '.\r\n' ? DOT : CRLF_DOT);
      process.nextTick(() => socket.uncork());
    }
    this.expected.push({
      command: 'DATA',
      handle: (reply) => {
        if (!isPositive(reply)) active.failure ??= replyError('DATA', reply);
        this.finish(active, active.failure ? null : reply.text);
      },
    });
    // The next transaction's envelope may follow the "." in the same write (RFC 2920).
    this.envelope = null;
    this.emitIdle();
  }

  /** Reports a transaction's result once: `response` when it was accepted, else its failure. */
  private finish(active: Active, response: string | null, error?: SmtpError, unsent = false): void {
    const index = this.inFlight.indexOf(active);
    if (index === -1) return;
    this.inFlight.splice(index, 1);
    if (this.inFlight.length === 0 && !this.closed) this.idleTimeout(0);
    if (response !== null) active.transaction.done({ ok: true, response });
    else if (active.failure) active.transaction.done({ ok: false, error: active.failure });
    else active.transaction.done({ ok: false, error: error as SmtpError, ...(unsent ? { unsent } : {}) });
  }

  /** Set by the pool: called when the session can take another transaction. */
  onIdle: (() => void) | null = null;

  private emitIdle(): void {
    if (this.canTake) this.onIdle?.();
  }

  // ---- connecting -------------------------------------------------------------------------------

  private connect(): Promise<void> {
    const { host, port, secure, connectionTimeoutMs } = this.options;
    return new Promise((resolve, reject) => {
      // A plain connection reads replies into a buffer of its own and hands them straight to
      // `onData` (`onread`): no Readable push, no 'data' event per read (issue 17). STARTTLS takes
      // the socket's reads over (the TLS socket reads as a stream), and TLS from the start never
      // uses it.
      const reads = secure
        ? null
        : utf8Reads((text) => {
            if (this.reads === reads && !this.closed) this.onData(text);
          });
      const socket = reads
        ? net.connect({
            host,
            port,
            lookup: specialUseLookup,
            onread: { buffer: Buffer.allocUnsafe(READ_BUFFER_BYTES), callback: reads },
          })
        : tls.connect({ host, port, lookup: specialUseLookup, ...tlsConnectOptions(host, this.options.ca) });
      this.reads = reads;
      this.socket = socket;
      const timer = setTimeout(() => {
        socket.destroy();
        reject(this.fail(new SmtpError('Connection timeout', { code: 'ETIMEDOUT', command: 'CONN' })));
      }, connectionTimeoutMs);
      const failed = (error: Error) => {
        clearTimeout(timer);
        reject(this.fail(connectionError(error, 'CONN', host)));
      };
      socket.once('error', failed);
      socket.once(secure ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        socket.off('error', failed);
        this.attach(socket);
        resolve();
      });
    });
  }

  private upgrade(): Promise<void> {
    const plain = this.socket as net.Socket;
    // From here on the TLS socket reads; the plain one's reads are not ours any more.
    this.reads = null;
    plain.removeAllListeners('data');
    plain.removeAllListeners('error');
    plain.removeAllListeners('close');
    plain.removeAllListeners('timeout');
    return new Promise((resolve, reject) => {
      const secure = tls.connect({ socket: plain, ...tlsConnectOptions(this.options.host, this.options.ca) });
      this.socket = secure;
      const failed = (error: Error) =>
        reject(this.fail(connectionError(error, 'STARTTLS', this.options.host)));
      secure.once('error', failed);
      secure.once('secureConnect', () => {
        secure.off('error', failed);
        this.attach(secure);
        resolve();
      });
    });
  }

  private attach(socket: net.Socket): void {
    socket.setNoDelay(true);
    this.timeoutMs = -1;
    this.idleTimeout(this.options.socketTimeoutMs);
    if (!this.reads) {
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => this.onData(chunk));
    }
    socket.on('error', (error) => this.destroy(connectionError(error, this.expected[0]?.command ?? 'CONN')));
    socket.on('close', () => this.destroy(connectionClosed(this.expected[0]?.command ?? 'CONN')));
    socket.on('timeout', () => {
      if (this.inFlight.length === 0 && this.expected.length === 0) return this.quit();
      this.destroy(
        new SmtpError('Timeout', { code: 'ETIMEDOUT', command: this.expected[0]?.command ?? 'CONN' }),
      );
    });
  }

  private async hello(): Promise<void> {
    this.write(`EHLO ${this.options.name}\r\n`);
    let reply = await this.expect('EHLO', this.options.socketTimeoutMs);
    if (reply.code !== 250) {
      // An old server without ESMTP: HELO, and none of the extensions.
      this.write(`HELO ${this.options.name}\r\n`);
      reply = await this.expect('HELO', this.options.socketTimeoutMs, 250);
    }
    this.extensions.clear();
    this.authMethods = [];
    for (const line of reply.text.split('\n').slice(1)) {
      const words = line
        .slice(4)
        .trim()
        .toUpperCase()
        .split(/[\s=]+/);
      if (words[0]) this.extensions.add(words[0]);
      if (words[0] === 'AUTH') this.authMethods.push(...words.slice(1));
    }
  }

  private async authenticate(auth: { user: string; pass: string }): Promise<void> {
    const methods = this.authMethods;
    const method = ['PLAIN', 'LOGIN', 'CRAM-MD5'].find((m) => methods.includes(m)) ?? 'PLAIN';
    const command = `AUTH ${method}`;
    const step = async (line: string, want: number): Promise<Reply> => {
      this.write(line);
      const reply = await this.expect(command, this.options.socketTimeoutMs);
      if (reply.code !== want) throw this.fail(authError(command, reply));
      return reply;
    };
    const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
    if (method === 'PLAIN') {
      await step(`AUTH PLAIN ${b64(`\u0000${auth.user}\u0000${auth.pass}`)}\r\n`, 235);
    } else if (method === 'LOGIN') {
      await step('AUTH LOGIN\r\n', 334);
      await step(`${b64(auth.user)}\r\n`, 334);
      await step(`${b64(auth.pass)}\r\n`, 235);
    } else {
      const challenge = await step('AUTH CRAM-MD5\r\n', 334);
      const nonce = Buffer.from(challenge.text.slice(4).trim(), 'base64').toString('utf8');
      const digest = createHmac('md5', auth.pass).update(nonce).digest('hex');
      await step(`${b64(`${auth.user} ${digest}`)}\r\n`, 235);
    }
  }

  /** The next reply, as a promise (connection set-up only); `want`: anything else rejects. */
  private expect(command: string, timeoutMs: number, want?: number): Promise<Reply> {
    return new Promise((resolve, reject) => {
      this.idleTimeout(timeoutMs);
      const entry: Expected & { reject?: (error: SmtpError) => void } = {
        command,
        handle: (reply) => {
          if (want !== undefined && reply.code !== want) {
            reject(this.fail(replyError(command, reply, command === 'CONN' ? 'EPROTOCOL' : 'EENVELOPE')));
          } else resolve(reply);
        },
        reject,
      };
      this.expected.push(entry);
    });
  }

  /**
   * Sets the socket's inactivity timeout, unless it already is that: while messages follow one
   * another, each would otherwise replace the socket's timer with a new one (issue 17). Nothing
   * is lost by not restarting it: the write that follows restarts it, as every read and write does.
   */
  private idleTimeout(ms: number): void {
    if (ms === this.timeoutMs || !this.socket) return;
    this.timeoutMs = ms;
    this.socket.setTimeout(ms);
  }

  // ---- replies ----------------------------------------------------------------------------------

  private onData(chunk: string): void {
    const text = this.buffered === '' ? chunk : this.buffered + chunk;
    let start = 0;
    let end = text.indexOf('\n');
    while (end !== -1) {
      const line = text.slice(start, text.charCodeAt(end - 1) === 13 ? end - 1 : end);
      start = end + 1;
      // "250-…" continues, "250 …" (or a bare "250") ends the reply.
      if (line.charCodeAt(3) === 45) {
        this.lines.push(line);
      } else {
        let reply = line;
        if (this.lines.length > 0) {
          this.lines.push(line);
          reply = this.lines.join('\n');
          this.lines = [];
        }
        this.onReply({ code: replyCode(reply), text: reply });
        if (this.closed) return;
      }
      end = text.indexOf('\n', start);
    }
    this.buffered = start === text.length ? '' : text.slice(start);
    if (this.buffered.length > 1_000_000) {
      this.destroy(new SmtpError('reply too long', { code: 'EPROTOCOL', command: 'CONN' }));
    }
  }

  private onReply(reply: Reply): void {
    const entry = this.expected.shift();
    if (!entry) {
      // Unasked for: a server closing an idle connection (421) or a confused one.
      this.destroy(replyError('CONN', reply, 'EPROTOCOL'));
      return;
    }
    entry.handle(reply);
    // 421: the server is closing the connection; what is pipelined behind it gets no reply.
    if (reply.code === 421) this.destroy(connectionClosed(this.expected[0]?.command ?? entry.command));
  }

  // ---- the end ----------------------------------------------------------------------------------

  private write(data: string | Buffer): void {
    if (this.pending) {
      if (typeof data === 'string' && this.pending.append(data)) return;
      this.flush();
    }
    this.socket?.write(data);
  }

  /** Closes the connection for a set-up failure and returns the error to throw. */
  private fail(error: SmtpError): SmtpError {
    this.destroy(error);
    return error;
  }

  private destroy(error: SmtpError | null): void {
    if (this.closed) return;
    this.closed = true;
    // A message not yet written never will be (its buffer is not reused: the collector takes it).
    this.pending = null;
    this.socket?.destroy();
    const failure = error ?? connectionClosed(this.expected[0]?.command ?? 'CONN');
    for (const entry of this.expected.splice(0)) {
      (entry as { reject?: (error: SmtpError) => void }).reject?.(failure);
    }
    let dataAhead = false;
    for (const active of [...this.inFlight]) {
      const before = active.transaction.phase === 'before-data';
      this.finish(active, null, failure, before && dataAhead);
      if (!before) dataAhead = true;
    }
    this.envelope = null;
    this.onClose?.(error);
  }
}

/** The three digits that start a reply line; 0 when they are not digits. */
function replyCode(line: string): number {
  const a = line.charCodeAt(0) - 48;
  const b = line.charCodeAt(1) - 48;
  const c = line.charCodeAt(2) - 48;
  if (a < 0 || a > 9 || b < 0 || b > 9 || c < 0 || c > 9) return 0;
  return a * 100 + b * 10 + c;
}

function isPositive(reply: Reply): boolean {
  return reply.code >= 200 && reply.code < 300;
}

/** Doubles the "." that starts a line (RFC 5321 §4.5.2). */
function dotStuff(message: Buffer): Buffer {
  const parts: Buffer[] = [];
  let from = 0;
  if (message[0] === 0x2e) {
    parts.push(Buffer.from('.'));
  }
  let at = message.indexOf(LF_DOT, from);
  while (at !== -1) {
    parts.push(message.subarray(from, at + 1), Buffer.from('.'));
    from = at + 1;
    at = message.indexOf(LF_DOT, from);
  }
  parts.push(message.subarray(from));
  return Buffer.concat(parts);
}
