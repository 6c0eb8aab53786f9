/**
 * Our SMTP client (src/transport/smtp-session.ts, smtp.ts) where test/integration/transport-smtp
 * does not look: pipelining and its failure modes, servers without PIPELINING, TLS (STARTTLS and
 * smtps, with the test CA's certificate), AUTH LOGIN, greetings that refuse, the
 * per-connection message limit, and messages withdrawn when the run stops.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import type { SendOutcome } from '../../src/domain/types.js';
import type { OutgoingMessage, Transport } from '../../src/engine/ports.js';
import { createSmtpTransport, type SmtpOptions } from '../../src/transport/smtp.js';
import { type SmtpSink, type SmtpSinkOptions, startSmtpSink } from '../helpers/smtp-sink.js';
import { serverCertificate, testCa } from '../helpers/tls-fixture.js';
import { helloMessage } from '../helpers/hello-message.js';

/** The test CA's server certificate (test/fixtures/tls), trusted with `ca: testCa()`. */
const { key, cert } = serverCertificate();

const open: Array<{ close(): Promise<void> }> = [];

afterEach(async () => {
  for (const resource of open.splice(0)) await resource.close();
});

const message = (to: string): OutgoingMessage =>
  helloMessage(to, { headers: { 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' } }, 9);

function transportTo(
  port: number,
  options: SmtpOptions = {},
  secure = false,
  auth?: [string, string],
): Transport {
  const transport = createSmtpTransport(
    {
      kind: 'smtp',
      host: '127.0.0.1',
      port,
      secure,
      user: auth ? auth[0] : null,
      password: auth ? auth[1] : null,
    },
    { timeoutMs: 5_000, ...options },
  );
  open.unshift(transport);
  return transport;
}

async function sinkWith(options: SmtpSinkOptions = {}): Promise<SmtpSink> {
  const sink = await startSmtpSink(options);
  open.push(sink);
  return sink;
}

/** A bare smtp-server for what the sink does not offer; counts what it accepted. */
async function server(options: SMTPServerOptions): Promise<{ port: number; accepted: string[] }> {
  const accepted: string[] = [];
  const smtp = new SMTPServer({
    disableReverseLookup: true,
    authOptional: true,
    logger: false,
    ...options,
    onData(stream, session, callback) {
      stream.resume();
      stream.on('end', () => {
        accepted.push(...session.envelope.rcptTo.map((rcpt) => rcpt.address));
        callback(null, 'Ok: queued');
      });
    },
  });
  smtp.on('error', () => undefined);
  await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
  open.push({ close: () => new Promise<void>((resolve) => smtp.close(() => resolve())) });
  const address = smtp.server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { port: address.port, accepted };
}

describe('pipelining', () => {
  it('sends many messages over few connections, each exactly once, in one round trip each', async () => {
    const sink = await sinkWith();
    const transport = transportTo(sink.port, { maxConnections: 2 });
    expect(transport.maxInFlight).toBe(6);
    const to = Array.from({ length: 60 }, (_, i) => `r${i}@example.net`);
    const outcomes = await Promise.all(to.map((address) => transport.send(message(address))));
    expect(outcomes.every((o) => o.kind === 'sent')).toBe(true);
    expect(to.filter((address) => sink.count(address) !== 1)).toEqual([]);
    expect(sink.connections).toBeLessThanOrEqual(2);
  });

  it('a cut after one message’s data: it is unknown; the one pipelined behind it goes again on a new connection, once', async () => {
    const sink = await sinkWith({ faults: [{ to: 'cut@example.net', fault: { kind: 'cutAfterData' } }] });
    const transport = transportTo(sink.port, { maxConnections: 1 });
    const [cut, behind] = await Promise.all([
      transport.send(message('cut@example.net')),
      transport.send(message('behind@example.net')),
    ]);
    expect(cut.kind).toBe('unknown');
    expect(behind.kind).toBe('sent');
    expect(sink.received('behind@example.net')).toBe(1);
    expect(sink.connections).toBe(2);
  });

  it('a refused recipient does not disturb the message pipelined after it', async () => {
    const sink = await sinkWith({
      faults: [
        { to: 'gone@example.net', fault: { kind: 'rejectRcpt', code: 550, text: '5.1.1 user unknown' } },
      ],
    });
    const transport = transportTo(sink.port, { maxConnections: 1 });
    const outcomes = await Promise.all(
      ['a@example.net', 'gone@example.net', 'b@example.net', 'c@example.net'].map((to) =>
        transport.send(message(to)),
      ),
    );
    expect(outcomes.map((o) => o.kind)).toEqual(['sent', 'failed', 'sent', 'sent']);
    expect(sink.connections).toBe(1);
  });

  it('a server without PIPELINING gets one command at a time', async () => {
    const { port, accepted } = await server({ hidePIPELINING: true, hideSTARTTLS: true });
    const transport = transportTo(port, { maxConnections: 1 });
    const outcomes = await Promise.all(
      ['a@example.net', 'b@example.net'].map((to) => transport.send(message(to))),
    );
    expect(outcomes.map((o) => o.kind)).toEqual(['sent', 'sent']);
    expect(accepted).toEqual(['a@example.net', 'b@example.net']);
  });

  it('messages still waiting for a connection come back withdrawn when the run stops; nothing of them is sent', async () => {
    const sink = await sinkWith();
    const transport = transportTo(sink.port, { maxConnections: 1 });
    const stop = new AbortController();
    const first = transport.send(message('first@example.net'), { signal: stop.signal });
    const waiting = transport.send(message('waiting@example.net'), { signal: stop.signal });
    stop.abort();
    const late = await transport.send(message('late@example.net'), { signal: stop.signal });
    // The first was already given a connection (or is about to be): it runs its course.
    expect(['sent', 'withdrawn']).toContain((await first).kind);
    expect((await waiting).kind).toBe('withdrawn');
    expect(late.kind).toBe('withdrawn');
    expect(sink.received('waiting@example.net') + sink.received('late@example.net')).toBe(0);
  });

  it('a connection that reaches its message limit is replaced; every message goes once', async () => {
    const sink = await sinkWith();
    const transport = transportTo(sink.port, { maxConnections: 1, maxMessagesPerConnection: 5 });
    const to = Array.from({ length: 23 }, (_, i) => `r${i}@example.net`);
    const outcomes: SendOutcome[] = [];
    for (const address of to) outcomes.push(await transport.send(message(address)));
    expect(outcomes.every((o) => o.kind === 'sent')).toBe(true);
    expect(to.filter((address) => sink.count(address) !== 1)).toEqual([]);
    expect(sink.connections).toBe(5);
  });
});

describe('connecting', () => {
  it('STARTTLS when offered: a certificate of a private CA is refused (fatal) unless trusted', async () => {
    const { port, accepted } = await server({ key, cert });
    const strict = await transportTo(port).send(message('ann@example.net'));
    expect(strict.kind).toBe('fatal');
    expect(strict.reply).toMatch(/certificate/i);
    const trusting = transportTo(port, { ca: testCa() });
    expect(await trusting.send(message('ann@example.net'))).toMatchObject({ kind: 'sent' });
    expect(accepted).toEqual(['ann@example.net']);
  });

  it('requireTLS without STARTTLS on offer is fatal; ignoreTLS sends in the clear', async () => {
    const { port } = await server({ hideSTARTTLS: true });
    expect((await transportTo(port, { requireTLS: true }).send(message('a@example.net'))).kind).toBe('fatal');
    const plain = await server({});
    expect(await transportTo(plain.port, { ignoreTLS: true }).send(message('b@example.net'))).toMatchObject({
      kind: 'sent',
    });
  });

  it('smtps: TLS from the first byte', async () => {
    const { port, accepted } = await server({ secure: true, key, cert });
    const transport = transportTo(port, { ca: testCa() }, true);
    expect(await transport.send(message('tls@example.net'))).toMatchObject({ kind: 'sent' });
    expect(accepted).toEqual(['tls@example.net']);
  });

  it('AUTH LOGIN when that is all the server offers; a wrong password is fatal', async () => {
    const { port } = await server({
      key,
      cert,
      authMethods: ['LOGIN'],
      authOptional: false,
      allowInsecureAuth: true,
      onAuth(auth, _session, callback) {
        if (auth.username === 'news' && auth.password === 's3cret-pass')
          return callback(null, { user: 'news' });
        return callback(Object.assign(new Error('5.7.8 bad credentials'), { responseCode: 535 }));
      },
    });
    expect(
      await transportTo(port, { ca: testCa() }, false, ['news', 's3cret-pass']).send(
        message('a@example.net'),
      ),
    ).toMatchObject({
      kind: 'sent',
    });
    const wrong = await transportTo(port, { ca: testCa() }, false, ['news', 'wr0ng-pass']).send(
      message('a@example.net'),
    );
    expect(wrong).toMatchObject({ kind: 'fatal' });
    expect(wrong.reply).toMatch(/^535 .*\(AUTH LOGIN\)$/);
    expect(wrong.reply).not.toContain('wr0ng-pass');
  });

  it('a greeting that refuses: 421 is a retry (throttled), 554 is fatal', async () => {
    for (const [code, kind] of [
      [421, 'retry'],
      [554, 'fatal'],
    ] as const) {
      const { port } = await server({
        hideSTARTTLS: true,
        onConnect(_session, callback) {
          callback(
            Object.assign(new Error(`${code === 421 ? '4.7.0' : '5.7.1'} go away`), { responseCode: code }),
          );
        },
      });
      const outcome = await transportTo(port).send(message('a@example.net'));
      expect(outcome.kind).toBe(kind);
      if (outcome.kind === 'retry') expect(outcome.throttled).toBe(true);
    }
  });
});
