/**
 * The `--dry-run` transport: counts what would be sent, per newsletter, and sends nothing. Needs
 * no server and, unless `compose: true`, does not load nodemailer at all: a dry run over a
 * million recipients must stay fast. With `compose: true` each message is also built to its
 * exact bytes (and a message that cannot be built is reported `failed`).
 */
import type { SendOutcome } from '../domain/types.js';
import type { BodyTemplate, FilledTemplate, OutgoingMessage } from '../domain/message.js';
import type { Transport } from '../engine/ports.js';

export interface CountingOptions {
  /** Build every message with MailComposer, to count exact bytes. Default false. */
  compose?: boolean;
}

export interface CountingTotals {
  messages: number;
  /** Exact message size with `compose`; otherwise subject + headers + HTML + text, in UTF-8. */
  bytes: number;
}

export interface CountingStats extends CountingTotals {
  /** Whether `bytes` are the sizes of the built messages. */
  composed: boolean;
  /** Keyed by newsletter id, read from the Message-ID (`<n{id}.…>`); null when it has none. */
  byNewsletter: Array<CountingTotals & { newsletterId: number | null }>;
}

export interface CountingTransport extends Transport {
  stats(): CountingStats;
}

export function createCountingTransport(options: CountingOptions = {}): CountingTransport {
  const compose = options.compose ?? false;
  const perNewsletter = new Map<number | null, CountingTotals>();
  let composer: Promise<typeof import('./compose.js')> | null = null;

  return {
    kind: 'count',

    async send(message: OutgoingMessage): Promise<SendOutcome> {
      let bytes: number;
      if (compose) {
        composer ??= import('./compose.js');
        try {
          bytes = (await (await composer).composeMessage(message)).length;
        } catch (error) {
          const text = error instanceof Error ? error.message : String(error);
          return { kind: 'failed', reply: `could not build the message: ${text}`, suppress: false };
        }
      } else {
        bytes = roughSize(message);
      }
      const id = newsletterIdOf(message.messageId);
      const totals = perNewsletter.get(id) ?? { messages: 0, bytes: 0 };
      totals.messages += 1;
      totals.bytes += bytes;
      perNewsletter.set(id, totals);
      return { kind: 'sent', reply: 'counted (dry run): nothing was sent', queueId: null };
    },

    async verify(): Promise<void> {},

    async close(): Promise<void> {},

    stats(): CountingStats {
      const byNewsletter = [...perNewsletter.entries()].map(([newsletterId, totals]) => ({
        newsletterId,
        ...totals,
      }));
      return {
        messages: byNewsletter.reduce((sum, n) => sum + n.messages, 0),
        bytes: byNewsletter.reduce((sum, n) => sum + n.bytes, 0),
        composed: compose,
        byNewsletter,
      };
    },
  };
}

/** The newsletter id in a Message-ID from src/domain/message-id.ts: `<n12.…@domain>` → 12. */
function newsletterIdOf(messageId: string): number | null {
  const match = /^<?n(\d+)\./.exec(messageId.trim());
  return match?.[1] ? Number(match[1]) : null;
}

function roughSize(message: OutgoingMessage): number {
  const { parts } = message;
  let size =
    Buffer.byteLength(message.subject) +
    (parts ? partSize(parts.html) : Buffer.byteLength(message.html)) +
    (parts ? partSize(parts.text) : Buffer.byteLength(message.text)) +
    Buffer.byteLength(message.from) +
    Buffer.byteLength(message.to);
  for (const [key, value] of Object.entries(message.headers))
    size += key.length + Buffer.byteLength(value) + 4;
  return size;
}

const literalBytes = new WeakMap<BodyTemplate, number>();

/** The UTF-8 size of a filled template, without building its text: a dry run counts a million. */
function partSize(part: FilledTemplate): number {
  let size = literalBytes.get(part.template);
  if (size === undefined) {
    size = part.template.literals.reduce((sum, literal) => sum + Buffer.byteLength(literal), 0);
    literalBytes.set(part.template, size);
  }
  const values = part.values.map((value) => Buffer.byteLength(value));
  for (const slot of part.template.slots) size += values[slot] ?? 0;
  return size;
}
