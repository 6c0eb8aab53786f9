import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { simpleParser } from 'mailparser';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { OutgoingMessage } from '../../src/engine/ports.js';
import { TransportCheckError } from '../../src/transport/check-error.js';
import { createFileOutbox, outboxFileName } from '../../src/transport/file-outbox.js';
import { createSendmailTransport } from '../../src/transport/sendmail.js';
import { helloMessage } from '../helpers/hello-message.js';

function message(to: string, newsletterId = 3): OutgoingMessage {
  return helloMessage(
    to,
    {
      from: '"Example News" <news@example.org>',
      headers: {
        'List-Unsubscribe': '<https://news.example.org/u/tok>, <mailto:unsubscribe@example.org>',
        'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
      },
    },
    newsletterId,
  );
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'newsletter-transport-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('file outbox', () => {
  it('writes one parseable .eml per message, named by its Message-ID, in a folder it creates', async () => {
    const outbox = join(dir, 'nested', 'outbox');
    const transport = createFileOutbox({ kind: 'file', dir: outbox });
    const messages = Array.from({ length: 5 }, (_, i) => message(`reader${i}@example.net`));

    const outcomes = await Promise.all(messages.map((m) => transport.send(m)));

    for (const [i, outcome] of outcomes.entries()) {
      const path = join(outbox, outboxFileName(messages[i]?.messageId ?? ''));
      expect(outcome).toEqual({ kind: 'sent', reply: `written ${path}`, queueId: null });
    }
    const files = (await readdir(outbox)).sort();
    expect(files).toEqual(messages.map((m) => outboxFileName(m.messageId)).sort());
    for (const m of messages) {
      const raw = await readFile(join(outbox, outboxFileName(m.messageId)));
      expect(raw.toString('latin1')).toMatch(/\r\n\r\n/);
      const parsed = await simpleParser(raw);
      expect(parsed.messageId).toBe(m.messageId);
      expect(parsed.subject).toBe(m.subject);
      expect(parsed.text?.trim()).toBe(m.text);
      expect(parsed.html).toContain(m.html);
      expect(parsed.headers.get('list')).toMatchObject({
        'unsubscribe-post': { name: 'List-Unsubscribe=One-Click' },
      });
    }
    await transport.verify();
    expect((await readdir(outbox)).sort()).toEqual(files);
    await transport.close();
  });

  it('names files safely and replaces a file of the same Message-ID rather than adding one', async () => {
    expect(outboxFileName('<n1.abc@example.org>')).toBe('n1.abc@example.org.eml');
    expect(outboxFileName('<../../etc/passwd>')).toBe('__.._etc_passwd.eml');
    expect(outboxFileName('<a b/c\\d>')).toBe('a_b_c_d.eml');

    const transport = createFileOutbox({ kind: 'file', dir });
    const m = message('ann@example.net');
    await transport.send(m);
    await transport.send({ ...m, subject: 'Second write' });
    const files = await readdir(dir);
    expect(files).toEqual([outboxFileName(m.messageId)]);
    expect((await simpleParser(await readFile(join(dir, files[0] ?? '')))).subject).toBe('Second write');
  });

  it('an unwritable folder → fatal, and verify() fails', async () => {
    // A path below a regular file: unwritable even for root.
    const blocker = join(dir, 'not-a-folder');
    await writeFile(blocker, 'x');
    const transport = createFileOutbox({ kind: 'file', dir: join(blocker, 'outbox') });

    const outcome = await transport.send(message('ann@example.net'));
    expect(outcome.kind).toBe('fatal');
    expect(outcome.reply).toMatch(/cannot write to the outbox .*ENOTDIR/);
    await expect(transport.verify()).rejects.toBeInstanceOf(TransportCheckError);
  });
});

describe('sendmail', () => {
  /** A fake sendmail: records its arguments and standard input, then runs `tail`. */
  async function fakeSendmail(name: string, tail: string, readInput = true): Promise<string> {
    const path = join(dir, name);
    const body = [
      '#!/bin/sh',
      `printf '%s\\n' "$*" > "${dir}/${name}.args"`,
      readInput ? `cat > "${dir}/${name}.eml"` : '',
      tail,
      '',
    ].join('\n');
    await writeFile(path, body);
    await chmod(path, 0o755);
    return path;
  }

  it('exit 0 → sent; the message arrives whole on standard input with -i -f from to', async () => {
    const path = await fakeSendmail('ok', 'exit 0');
    const transport = createSendmailTransport({ kind: 'sendmail', path });
    const m = message('ann@example.net');

    expect(await transport.send(m)).toEqual({
      kind: 'sent',
      reply: `accepted by ${path} (exit 0)`,
      queueId: null,
    });

    expect((await readFile(`${path}.args`, 'utf8')).trim()).toBe('-i -f news@example.org ann@example.net');
    const raw = await readFile(`${path}.eml`);
    expect(raw.includes('\r\n')).toBe(false);
    const parsed = await simpleParser(raw);
    expect(parsed.messageId).toBe(m.messageId);
    expect(parsed.html).toContain(m.html);
    await transport.verify();
    await transport.close();
  });

  it('exit 75 (EX_TEMPFAIL) → retry', async () => {
    const transport = createSendmailTransport({
      kind: 'sendmail',
      path: await fakeSendmail('tempfail', 'exit 75'),
    });
    expect(await transport.send(message('ann@example.net'))).toMatchObject({
      kind: 'retry',
      throttled: false,
    });
  });

  it('exit 1 → failed', async () => {
    const path = await fakeSendmail('fail', 'exit 1');
    const transport = createSendmailTransport({ kind: 'sendmail', path });
    expect(await transport.send(message('ann@example.net'))).toEqual({
      kind: 'failed',
      reply: `${path} exited with code 1`,
      suppress: false,
    });
  });

  it('killed after reading the message → unknown', async () => {
    const transport = createSendmailTransport({
      kind: 'sendmail',
      path: await fakeSendmail('killed', 'kill -9 $$'),
    });
    expect(await transport.send(message('ann@example.net'))).toMatchObject({ kind: 'unknown' });
  });

  it('a missing binary → fatal, and verify() fails', async () => {
    const transport = createSendmailTransport({ kind: 'sendmail', path: join(dir, 'no-such-sendmail') });
    expect(await transport.send(message('ann@example.net'))).toMatchObject({ kind: 'fatal' });
    await expect(transport.verify()).rejects.toBeInstanceOf(TransportCheckError);
  });

  it('a sendmail that never exits → unknown after the timeout', async () => {
    const path = await fakeSendmail('stuck', `echo $$ > "${dir}/stuck.pid"; exec sleep 30`);
    const transport = createSendmailTransport({ kind: 'sendmail', path }, { sendmailTimeoutMs: 300 });
    expect(await transport.send(message('ann@example.net'))).toMatchObject({ kind: 'unknown' });
    // The fake process exec'd into sleep under the pid it wrote: end exactly that one.
    process.kill(Number(await readFile(join(dir, 'stuck.pid'), 'utf8')), 'SIGTERM');
  });
});
