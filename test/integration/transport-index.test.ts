import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { messageIdFor } from '../../src/domain/message-id.js';
import type { OutgoingMessage } from '../../src/engine/ports.js';
import { createCountingTransport, createTransport } from '../../src/transport/index.js';
import { type SmtpSink, startSmtpSink } from '../helpers/smtp-sink.js';

function message(to: string, newsletterId: number): OutgoingMessage {
  return {
    messageId: messageIdFor(null, newsletterId, to, 'example.org'),
    from: 'news@example.org',
    to,
    subject: 'Héllo',
    html: '<p>Hi</p>',
    text: 'Hi',
    headers: { 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' },
  };
}

let dir: string;
let sink: SmtpSink | null = null;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'newsletter-transport-'));
});
afterEach(async () => {
  await sink?.close();
  sink = null;
  await rm(dir, { recursive: true, force: true });
});

describe('createTransport', () => {
  it('builds each kind from its spec', async () => {
    sink = await startSmtpSink();
    const smtp = await createTransport(
      { kind: 'smtp', secure: false, host: '127.0.0.1', port: sink.port, user: null, password: null },
      { timeoutMs: 5_000 },
    );
    expect(smtp.kind).toBe('smtp');
    expect(await smtp.send(message('ann@example.net', 1))).toMatchObject({ kind: 'sent' });
    await smtp.close();
    expect(sink.count('ann@example.net')).toBe(1);

    const file = await createTransport({ kind: 'file', dir });
    expect(file.kind).toBe('file');
    expect(await file.send(message('ann@example.net', 1))).toMatchObject({ kind: 'sent' });
    expect(await readdir(dir)).toHaveLength(1);

    const sendmail = await createTransport({ kind: 'sendmail', path: join(dir, 'missing') });
    expect(sendmail.kind).toBe('sendmail');
  });

  it('loads nodemailer only through dynamic imports (nothing is due → nothing loaded)', async () => {
    // The entry point and the dry-run transport may import other modules only as types, or each
    // other: a static import of smtp, sendmail, file-outbox, compose or nodemailer would load it.
    for (const file of ['index.ts', 'counting.ts', 'check-error.ts']) {
      const source = await readFile(join(import.meta.dirname, '../../src/transport', file), 'utf8');
      const valueImports = [
        ...source.matchAll(/^(?:import|export)\s+(?!type\b)[^;]*?from\s+'([^']+)'/gms),
      ].map((m) => m[1]);
      for (const specifier of valueImports)
        expect(['./counting.js', './check-error.js']).toContain(specifier);
    }
  });
});

describe('counting transport (dry run)', () => {
  it('counts messages and bytes per newsletter and sends nothing', async () => {
    const counter = createCountingTransport();
    for (const to of ['a@example.net', 'b@example.net']) {
      expect(await counter.send(message(to, 1))).toMatchObject({ kind: 'sent', queueId: null });
    }
    await counter.send(message('c@example.net', 2));
    await counter.send({ ...message('d@example.net', 2), messageId: '<no-newsletter@example.org>' });

    const stats = counter.stats();
    expect(stats.messages).toBe(4);
    expect(stats.composed).toBe(false);
    expect(stats.byNewsletter.map(({ newsletterId, messages }) => ({ newsletterId, messages }))).toEqual([
      { newsletterId: 1, messages: 2 },
      { newsletterId: 2, messages: 1 },
      { newsletterId: null, messages: 1 },
    ]);
    expect(stats.bytes).toBe(stats.byNewsletter.reduce((sum, n) => sum + n.bytes, 0));
    expect(stats.bytes).toBeGreaterThan(0);
    await counter.verify();
    await counter.close();
  });

  it('with compose: true, counts the exact size of each built message', async () => {
    const rough = createCountingTransport();
    const exact = createCountingTransport({ compose: true });
    await rough.send(message('a@example.net', 1));
    await exact.send(message('a@example.net', 1));
    expect(exact.stats().composed).toBe(true);
    // Headers, MIME structure and encoding make the built message larger than its parts.
    expect(exact.stats().bytes).toBeGreaterThan(rough.stats().bytes + 200);
  });
});
