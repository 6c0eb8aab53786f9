/**
 * `file:./outbox`: one `.eml` per message, the exact bytes the SMTP transport would send, named
 * by its Message-ID. Written to a hidden temporary name, flushed to disk, then renamed: a crash
 * leaves at most a stray `.tmp`, never half a message under a real name. The same Message-ID
 * written again replaces its file, so a resend never makes a second copy. A message with a VERP
 * return path starts with `Return-Path: <…>`, the envelope sender a delivering MTA records.
 *
 * Files are 0600 and a folder we create is 0700, whatever the umask: each .eml holds a subscriber's
 * address, name and live unsubscribe link. They used to be 0644 so that a local MTA or a pickup
 * script running as another user could read them; that is better granted on purpose (a group and
 * `chmod g+rx` on the folder, or an ACL) than to every local user by default.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { TransportSpec } from '../domain/transport-spec.js';
import type { SendOutcome } from '../domain/types.js';
import type { OutgoingMessage } from '../domain/message.js';
import type { Transport } from '../engine/ports.js';
import { TransportCheckError } from './check-error.js';
import { type ComposeOptions, composeMessage } from './compose.js';

export type FileSpec = Extract<TransportSpec, { kind: 'file' }>;

/** `<n1.ab12@example.org>` → `n1.ab12@example.org.eml`; anything but `[A-Za-z0-9._@+-]` → `_`. */
export function outboxFileName(messageId: string): string {
  const bare = messageId.trim().replace(/^<|>$/g, '');
  const safe = bare
    .replace(/[^A-Za-z0-9._@+-]/g, '_')
    .replace(/^\.+/, '_')
    .slice(0, 200);
  return `${safe || 'message'}.eml`;
}

export function createFileOutbox(spec: FileSpec, options: ComposeOptions = {}): Transport {
  const dir = resolve(spec.dir);
  let ready: Promise<void> | null = null;
  const ensureDir = (): Promise<void> => {
    ready ??= mkdir(dir, { recursive: true, mode: 0o700 }).then(
      () => undefined,
      (error: unknown) => {
        ready = null;
        throw error;
      },
    );
    return ready;
  };

  return {
    kind: 'file',

    async send(message: OutgoingMessage): Promise<SendOutcome> {
      let raw: Buffer;
      try {
        raw = await composeMessage(message, options);
        // The envelope sender, as a delivering MTA records it: whatever picks the file up (or a
        // test) sees the VERP return path that names this delivery. Not covered by DKIM.
        if (message.returnPath)
          raw = Buffer.concat([Buffer.from(`Return-Path: <${message.returnPath}>\r\n`, 'latin1'), raw]);
      } catch (error) {
        return { kind: 'failed', reply: `could not build the message: ${errorText(error)}`, suppress: false };
      }
      const path = join(dir, outboxFileName(message.messageId));
      try {
        await ensureDir();
        await writeAtomically(path, raw);
      } catch (error) {
        return { kind: 'fatal', reply: `cannot write to the outbox ${dir}: ${errorText(error)}` };
      }
      return { kind: 'sent', reply: `written ${path}`, queueId: null };
    },

    async verify(): Promise<void> {
      const probe = join(dir, `.probe-${process.pid}-${randomBytes(4).toString('hex')}`);
      try {
        await ensureDir();
        await writeAtomically(probe, Buffer.alloc(0));
        await rm(probe, { force: true });
      } catch (error) {
        const reply = `cannot write to the outbox ${dir}: ${errorText(error)}`;
        throw new TransportCheckError(`file outbox check failed: ${reply}`, { kind: 'fatal', reply });
      }
    },

    async close(): Promise<void> {},
  };
}

async function writeAtomically(path: string, bytes: Buffer): Promise<void> {
  const dir = resolve(path, '..');
  const temp = join(dir, `.${randomBytes(6).toString('hex')}-${process.pid}.tmp`);
  const handle = await open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  try {
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  await syncDir(dir);
}

/** Makes the rename itself durable; best effort, some file systems refuse to open a directory. */
async function syncDir(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // The file is complete either way; only its name might not survive a power cut.
  }
}

function errorText(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code && !error.message.startsWith(code) ? `${code} ${error.message}` : error.message;
  }
  return String(error);
}
