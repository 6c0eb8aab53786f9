/**
 * A real SMTP server for tests (smtp-server on 127.0.0.1, a free port), with faults chosen per
 * test: reject a recipient, reject the message after DATA, drop the connection at RCPT TO,
 * read the whole message then drop the connection without a reply (`cutAfterData`), read it
 * and never reply (`hangAfterData`), or drop a connection before the greeting. Without `auth`,
 * STARTTLS is not offered, so loopback clients need no certificate; with `auth` it is (the
 * client never sends a password without TLS), with the test certificate of
 * test/helpers/tls-fixture.ts: clients trust `caPath`. `close()` destroys every socket first, so
 * a test never waits on a hanging session.
 */
import type { Socket } from 'node:net';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import { type ServerCertificate, serverCertificate } from './tls-fixture.js';

export type SinkFault =
  /** Reply to RCPT TO with this code and text, e.g. 550 + `5.1.1 <x@y>: user unknown`. */
  | { kind: 'rejectRcpt'; code: number; text: string }
  /** Read the whole message, then reply with this code and text. */
  | { kind: 'rejectData'; code: number; text: string }
  /** Destroy the socket on RCPT TO, without a reply: the message data was never sent. */
  | { kind: 'cutAtRcpt' }
  /** Read the whole message (the final "." included), then destroy the socket without a reply. */
  | { kind: 'cutAfterData' }
  /** Read the whole message and never reply, until the sink is closed. */
  | { kind: 'hangAfterData' }
  /** Destroy the connection as soon as it is accepted, before the greeting (match with `nth`). */
  | { kind: 'dropConnection' };

export interface SinkRule {
  /** The recipient address it applies to (case-insensitive). */
  to?: string;
  /**
   * The nth transaction, 1-based, numbered at its first RCPT TO; for `dropConnection`, the nth
   * connection.
   */
  nth?: number;
  fault: SinkFault;
}

export type SinkDisposition = 'accepted' | 'rejected' | 'cut' | 'hang';

export interface SinkMessage {
  seq: number;
  from: string;
  to: string[];
  raw: Buffer;
  /** The Message-ID header, with its angle brackets; null when the message has none. */
  messageId: string | null;
  disposition: SinkDisposition;
}

export interface SmtpSinkOptions {
  faults?: SinkRule[];
  /** Require AUTH with exactly these credentials (over plain text: loopback only). */
  auth?: { user: string; password: string };
  /** smtp-server's inactivity timeout; bounds a client that stalls. Default 10 s. */
  socketTimeoutMs?: number;
  /** Offer SMTPUTF8 (RFC 6531) in the EHLO reply. Default true, as smtp-server does. */
  smtputf8?: boolean;
  /**
   * `starttls`: offered in the EHLO reply; `implicit`: TLS from the first byte (smtps);
   * `none`: never. Default: `starttls` with `auth`, else `none`.
   */
  tls?: 'starttls' | 'implicit' | 'none';
  /** The server's certificate; default the test CA's (tls-fixture.ts). */
  certificate?: ServerCertificate;
}

export interface SmtpSink {
  port: number;
  /** `smtp://127.0.0.1:port` */
  url: string;
  /** Messages answered with 250. */
  readonly total: number;
  /** Every message whose data was read completely, whatever the reply (see `disposition`). */
  readonly messages: readonly SinkMessage[];
  /** TCP connections accepted so far. */
  readonly connections: number;
  /** Every MAIL FROM and RCPT TO command line as it arrived on the wire (smtp-server decodes A-labels). */
  readonly envelopeCommands: readonly string[];
  /** AUTH attempts that reached the server (over TLS or not). */
  readonly authAttempts: number;
  /** AUTH command lines read in clear, before any TLS: a password on the wire. */
  readonly clearTextAuthCommands: number;
  /** The file a client trusts the server's certificate with (NEWSLETTER_SMTP_CA). */
  caPath: string;
  /** Messages to `address` answered with 250. */
  count(address: string): number;
  /** Messages to `address` read completely, whatever the reply: what the server may hold. */
  received(address: string): number;
  addFault(rule: SinkRule): void;
  close(): Promise<void>;
}

const CLOSE_BOUND_MS = 2_000;

export async function startSmtpSink(options: SmtpSinkOptions = {}): Promise<SmtpSink> {
  const rules: SinkRule[] = [...(options.faults ?? [])];
  const messages: SinkMessage[] = [];
  const sockets = new Map<number, Socket>();
  const seqOfSession = new Map<string, number>();
  let transactions = 0;
  let connections = 0;
  const envelopeCommands: string[] = [];
  let authAttempts = 0;
  let clearTextAuthCommands = 0;
  const tlsMode = options.tls ?? (options.auth ? 'starttls' : 'none');
  const certificate = options.certificate ?? serverCertificate();

  const find = (kinds: SinkFault['kind'][], seq: number, to: readonly string[]): SinkFault | undefined =>
    rules.find(
      (rule) =>
        kinds.includes(rule.fault.kind) &&
        (rule.nth === undefined || rule.nth === seq) &&
        (rule.to === undefined || to.some((address) => address.toLowerCase() === rule.to?.toLowerCase())),
    )?.fault;

  const socketOf = (session: SMTPServerSession): Socket | undefined => sockets.get(session.remotePort);

  const server = new SMTPServer({
    name: 'sink.test',
    banner: 'smtp-sink ready',
    disableReverseLookup: true,
    secure: tlsMode === 'implicit',
    key: certificate.key,
    cert: certificate.cert,
    hideSTARTTLS: tlsMode !== 'starttls',
    disabledCommands: tlsMode === 'starttls' ? [] : ['STARTTLS'],
    hideENHANCEDSTATUSCODES: true,
    hideSMTPUTF8: options.smtputf8 === false,
    authOptional: !options.auth,
    allowInsecureAuth: true,
    logger: false,
    socketTimeout: options.socketTimeoutMs ?? 10_000,
    closeTimeout: 500,
    onAuth(auth, _session, callback) {
      authAttempts += 1;
      if (!options.auth || (auth.username === options.auth.user && auth.password === options.auth.password)) {
        callback(null, { user: auth.username ?? 'anonymous' });
        return;
      }
      callback(replyError(535, '5.7.8 Authentication credentials invalid'));
    },
    onRcptTo(address, session, callback) {
      let seq = seqOfSession.get(transactionKey(session));
      if (seq === undefined) {
        seq = ++transactions;
        seqOfSession.set(transactionKey(session), seq);
      }
      const fault = find(['rejectRcpt', 'cutAtRcpt'], seq, [address.address]);
      if (fault?.kind === 'cutAtRcpt') {
        socketOf(session)?.destroy();
        return;
      }
      if (fault?.kind === 'rejectRcpt') {
        callback(replyError(fault.code, fault.text));
        return;
      }
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const to = session.envelope.rcptTo.map((entry) => entry.address);
        const seq = seqOfSession.get(transactionKey(session)) ?? ++transactions;
        seqOfSession.delete(transactionKey(session));
        const raw = Buffer.concat(chunks);
        const fault = find(['rejectData', 'cutAfterData', 'hangAfterData'], seq, to);
        const record = (disposition: SinkDisposition): void => {
          const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
          messages.push({ seq, from, to, raw, messageId: messageIdOf(raw), disposition });
        };
        switch (fault?.kind) {
          case 'rejectData':
            record('rejected');
            callback(replyError(fault.code, fault.text));
            return;
          case 'cutAfterData':
            record('cut');
            socketOf(session)?.destroy();
            return;
          case 'hangAfterData':
            record('hang');
            return;
          default:
            record('accepted');
            callback(null, `Ok: queued as SINK${seq}`);
        }
      });
    },
  });
  server.on('error', () => {
    // Clients that vanish mid-session (the faults above do it on purpose) are not test failures.
  });
  server.server.on('connection', (socket: Socket) => {
    connections += 1;
    const port = socket.remotePort;
    if (port === undefined || find(['dropConnection'], connections, [])) {
      socket.destroy();
      return;
    }
    sockets.set(port, socket);
    socket.once('close', () => sockets.delete(port));
    let pending = '';
    socket.on('data', (chunk: Buffer) => {
      const lines = (pending + chunk.toString('utf8')).split('\r\n');
      // A partial last line waits for the next chunk; message data can be long, keep only a tail.
      pending = (lines.pop() ?? '').slice(-2000);
      for (const line of lines) {
        if (/^(MAIL FROM|RCPT TO):/i.test(line)) envelopeCommands.push(line);
        // After STARTTLS this socket carries ciphertext: an AUTH line here was sent in clear.
        if (/^AUTH\b/i.test(line)) clearTextAuthCommands += 1;
      }
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.server.off('error', reject);
      resolve();
    });
  });
  const address = server.server.address();
  if (address === null || typeof address === 'string') throw new Error('smtp sink: no TCP address');
  const port = address.port;

  const accepted = (address: string): SinkMessage[] =>
    messages.filter((m) => m.disposition === 'accepted' && includes(m.to, address));

  return {
    port,
    url: `${tlsMode === 'implicit' ? 'smtps' : 'smtp'}://127.0.0.1:${port}`,
    get total() {
      return messages.filter((m) => m.disposition === 'accepted').length;
    },
    get messages() {
      return messages;
    },
    get connections() {
      return connections;
    },
    get envelopeCommands() {
      return envelopeCommands;
    },
    get authAttempts() {
      return authAttempts;
    },
    get clearTextAuthCommands() {
      return clearTextAuthCommands;
    },
    caPath: certificate.caPath,
    count: (address) => accepted(address).length,
    received: (address) => messages.filter((m) => includes(m.to, address)).length,
    addFault(rule) {
      rules.push(rule);
    },
    async close() {
      for (const socket of sockets.values()) socket.destroy();
      sockets.clear();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, CLOSE_BOUND_MS);
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}

/** One transaction of one session: smtp-server gives each transaction a fresh envelope. */
function transactionKey(session: SMTPServerSession): string {
  return `${session.id}:${session.transaction ?? 0}`;
}

function includes(list: readonly string[], address: string): boolean {
  return list.some((entry) => entry.toLowerCase() === address.toLowerCase());
}

function replyError(code: number, text: string): Error {
  return Object.assign(new Error(text), { responseCode: code });
}

function messageIdOf(raw: Buffer): string | null {
  const text = raw.toString('utf8');
  const end = text.search(/\r?\n\r?\n/);
  const head = (end === -1 ? text : text.slice(0, end)).replace(/\r?\n[ \t]+/g, ' ');
  return /^Message-ID:\s*(<[^>\s]+>)/im.exec(head)?.[1] ?? null;
}
