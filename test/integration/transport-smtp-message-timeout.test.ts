/**
 * The per-message timeout (NEWSLETTER_SMTP_TIMEOUT's bound on one message, waiting for a
 * connection included) is kept by one timer for the whole pool rather than one per message
 * (src/transport/smtp.ts, issue 17). What must not change: each message fails at its own deadline,
 * counted from its own hand-over, never earlier because another message's deadline came first,
 * and a message that settles leaves nothing that keeps the process waiting.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { parseTransport, type TransportSpec } from '../../src/domain/transport-spec.js';
import type { OutgoingMessage, Transport } from '../../src/engine/ports.js';
import { createSmtpTransport } from '../../src/transport/smtp.js';
import { helloMessage } from '../helpers/hello-message.js';

const TIMEOUT_MS = 400;

const message = (to: string): OutgoingMessage => helloMessage(to, { from: 'news@example.org' });

/** A server that accepts connections and never says a word: no message ever gets a connection. */
async function silentServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    port: address.port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const open: Array<{ close(): Promise<void> }> = [];

afterEach(async () => {
  for (const resource of open.splice(0)) await resource.close();
});

async function silentTransport(): Promise<Transport> {
  const server = await silentServer();
  open.push(server);
  const spec = parseTransport(`smtp://127.0.0.1:${server.port}`) as Extract<TransportSpec, { kind: 'smtp' }>;
  const transport = createSmtpTransport(spec, {
    maxConnections: 1,
    // Only the message timeout can end a wait here.
    timeoutMs: 30_000,
    messageTimeoutMs: TIMEOUT_MS,
  });
  open.unshift(transport);
  return transport;
}

/** Sends one message; resolves with its outcome and how long it took from the hand-over. */
async function timed(transport: Transport, to: string): Promise<{ kind: string; reply: string; ms: number }> {
  const start = performance.now();
  const outcome = await transport.send(message(to));
  return { kind: outcome.kind, reply: outcome.reply, ms: performance.now() - start };
}

describe('the message timeout, one timer for the pool', () => {
  it('each waiting message fails at its own deadline, not at the first one', async () => {
    const transport = await silentTransport();
    const order: string[] = [];
    const first = timed(transport, 'first@example.net').then((result) => {
      order.push('first');
      return result;
    });
    // The second one is handed over later, so its deadline is later than the first one's.
    await new Promise((resolve) => setTimeout(resolve, 150));
    const second = timed(transport, 'second@example.net').then((result) => {
      order.push('second');
      return result;
    });
    const [a, b] = await Promise.all([first, second]);
    for (const result of [a, b]) {
      expect(result.kind).toBe('retry');
      expect(result.reply).toMatch(/no connection within the message timeout/);
      expect(result.ms).toBeGreaterThanOrEqual(TIMEOUT_MS);
      // Not held up long past it either (the timer is armed for the earliest deadline left).
      expect(result.ms).toBeLessThan(TIMEOUT_MS + 1_000);
    }
    expect(order).toEqual(['first', 'second']);
  });

  it('a message handed over after the others settled gets a full timeout of its own', async () => {
    const transport = await silentTransport();
    expect((await timed(transport, 'early@example.net')).kind).toBe('retry');
    const late = await timed(transport, 'late@example.net');
    expect(late.kind).toBe('retry');
    expect(late.ms).toBeGreaterThanOrEqual(TIMEOUT_MS);
  });
});
