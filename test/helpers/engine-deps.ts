/**
 * SendDueDeps for in-process engine tests: a real store and configuration, a transport that only
 * records whom it was handed and answers as the test says, no run lock, every process alive.
 */
import type { Config } from '../../src/config.js';
import type { Millis, SendOutcome } from '../../src/domain/types.js';
import type { OutgoingMessage, Transport } from '../../src/engine/ports.js';
import type { RenderModule, SendDueDeps } from '../../src/engine/send-due.js';
import { StopController } from '../../src/engine/stop.js';
import type { Store } from '../../src/engine/store.js';

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

export function engineDeps(options: {
  config: Config;
  store: Store;
  transport: Transport;
  hostId: string;
  hostname?: string;
  now?: () => Millis;
  render?: RenderModule;
  maxMessages?: number | null;
  templatesRoot?: string;
}): SendDueDeps {
  const render = options.render ?? storedBodyRender;
  return {
    config: options.config,
    store: options.store,
    hostId: options.hostId,
    hostname: options.hostname ?? 'test',
    pid: process.pid,
    now: options.now ?? Date.now,
    stop: new StopController(),
    events: () => undefined,
    acquireLock: async () => ({ compromised: null, release: async () => undefined }),
    isProcessAlive: () => true,
    loadRender: async () => render,
    loadTransport: async () => options.transport,
    maxMessages: options.maxMessages ?? null,
    maxSeconds: null,
    templatesRoot: () => options.templatesRoot ?? '/nonexistent',
  };
}
