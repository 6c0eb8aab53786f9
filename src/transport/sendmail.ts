/**
 * Hands each message to a local sendmail-compatible program (`sendmail -i -f from to`) through
 * nodemailer's sendmail transport: exit 0 means queued; the exit code decides the rest (see
 * classifySendmailFailure). The bytes are the ones the SMTP transport would send, with LF line
 * endings as local mailers expect.
 */
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import nodemailer from 'nodemailer';
import { classifySendmailFailure, type SendmailFailure } from '../domain/outcome.js';
import type { TransportSpec } from '../domain/transport-spec.js';
import type { SendOutcome } from '../domain/types.js';
import type { OutgoingMessage } from '../domain/message.js';
import type { Transport } from '../engine/ports.js';
import { TransportCheckError } from './check-error.js';
import { type ComposeOptions, composeMessage, envelopeOf } from './compose.js';

export type SendmailSpec = Extract<TransportSpec, { kind: 'sendmail' }>;

export interface SendmailOptions extends ComposeOptions {
  /**
   * How long one sendmail process may take, in ms; then the outcome is `unknown` (it may still
   * queue the message). Default 60 s.
   */
  sendmailTimeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 60_000;

export function createSendmailTransport(spec: SendmailSpec, options: SendmailOptions = {}): Transport {
  const transporter = nodemailer.createTransport({
    sendmail: true,
    path: spec.path,
    newline: 'unix',
    disableFileAccess: true,
    disableUrlAccess: true,
    logger: false,
  });
  const timeoutMs = options.sendmailTimeoutMs ?? DEFAULT_TIMEOUT_MS;

  return {
    kind: 'sendmail',

    async send(message: OutgoingMessage): Promise<SendOutcome> {
      let raw: Buffer;
      try {
        raw = await composeMessage(message, options);
      } catch (error) {
        const text = error instanceof Error ? error.message : String(error);
        return { kind: 'failed', reply: `could not build the message: ${text}`, suppress: false };
      }
      const sending = transporter
        .sendMail({ raw, envelope: envelopeOf(message), messageId: message.messageId })
        .then(
          (): SendOutcome => ({ kind: 'sent', reply: `accepted by ${spec.path} (exit 0)`, queueId: null }),
          (error: unknown): SendOutcome => classifySendmailFailure(sendmailFailureOf(error), spec.path),
        );
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<SendOutcome>((resolve) => {
        timer = setTimeout(
          () => resolve({ kind: 'unknown', reply: `${spec.path} did not exit within ${timeoutMs} ms` }),
          timeoutMs,
        );
      });
      try {
        return await Promise.race([sending, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },

    async verify(): Promise<void> {
      try {
        await access(spec.path, constants.X_OK);
      } catch (error) {
        const outcome = classifySendmailFailure(sendmailFailureOf(error), spec.path);
        throw new TransportCheckError(`sendmail check failed: ${outcome.reply}`, outcome);
      }
    },

    async close(): Promise<void> {
      transporter.close();
    },
  };
}

/** nodemailer reports the exit as text ("Sendmail exited with code 75"); read it back. */
function sendmailFailureOf(error: unknown): SendmailFailure {
  if (typeof error !== 'object' || error === null) return { message: String(error) };
  const e = error as { code?: unknown; message?: unknown };
  const message = typeof e.message === 'string' ? e.message : '';
  const code = typeof e.code === 'string' && e.code !== 'ESENDMAIL' ? e.code : undefined;
  const exit = /exited with code (\d+)/i.exec(message)?.[1];
  const signal = /terminated by (\w+)/i.exec(message)?.[1];
  return {
    code,
    exitCode: exit === undefined ? undefined : Number(exit),
    signal,
    messageWritten: !/before the message was written/i.test(message),
    message,
  };
}
