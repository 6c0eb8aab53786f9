/**
 * Each transport hands the message's VERP return path to the next hop as its envelope sender
 * (issue 18): sendmail gets it as `-f` (a real program run by the transport, recording its
 * arguments), the file outbox records it as the first line, `Return-Path: <…>`. The SMTP
 * client's MAIL FROM is checked at a real server in test/e2e/return-path-smtp.test.ts.
 */
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { messageIdFor } from '../../src/domain/message-id.js';
import type { OutgoingMessage } from '../../src/engine/ports.js';
import { createTransport } from '../../src/transport/index.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'newsletter-return-path-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const RETURN_PATH = 'bounces+baaaaaaaaaetmja5gujzuulsi5u@example.org';

function message(to: string, returnPath?: string): OutgoingMessage {
  return {
    messageId: messageIdFor('k'.repeat(16), 5, to, 'example.org'),
    from: 'Example News <news@example.org>',
    to,
    returnPath,
    subject: 'Hello',
    html: '<p>Hello</p>',
    text: 'Hello',
    headers: {},
  };
}

it('sendmail: -f is the return path when the message has one, else the From address', async () => {
  const log = join(dir, 'argv.log');
  const program = join(dir, 'fake-sendmail');
  await writeFile(program, `#!/bin/sh\nprintf '%s\\n' "$*" >> '${log}'\ncat > /dev/null\n`);
  await chmod(program, 0o700);
  const transport = await createTransport({ kind: 'sendmail', path: program });
  expect(await transport.send(message('ann@example.net', RETURN_PATH))).toMatchObject({ kind: 'sent' });
  expect(await transport.send(message('bob@example.net'))).toMatchObject({ kind: 'sent' });
  await transport.close();
  const lines = (await readFile(log, 'utf8')).trim().split('\n');
  expect(lines[0]).toContain(`-f ${RETURN_PATH}`);
  expect(lines[0]).toContain('ann@example.net');
  expect(lines[1]).toContain('-f news@example.org');
});

it('file outbox: the return path is recorded as Return-Path, before the message; none without one', async () => {
  const outbox = join(dir, 'outbox');
  const transport = await createTransport({ kind: 'file', dir: outbox });
  await transport.send(message('ann@example.net', RETURN_PATH));
  await transport.send(message('bob@example.net'));
  const texts = await Promise.all(
    (await readdir(outbox)).map(async (name) => readFile(join(outbox, name), 'latin1')),
  );
  const ann = texts.find((text) => text.includes('To: ann@example.net')) ?? '';
  const bob = texts.find((text) => text.includes('To: bob@example.net')) ?? '';
  expect(ann.startsWith(`Return-Path: <${RETURN_PATH}>\r\n`)).toBe(true);
  expect(bob).not.toContain('Return-Path');
});
