/**
 * The errors of our SMTP client (src/transport/smtp-session.ts), shaped like nodemailer's
 * (`code`, `command`, `responseCode`, `response`) so that src/domain/outcome.ts classifies them
 * into the ledger's outcomes (DESIGN's SMTP outcome table), and worded to say what to do.
 */
import type { SessionOptions } from './smtp-session.js';

export class SmtpError extends Error {
  code: string;
  originalCode: string | undefined;
  responseCode: number | undefined;
  response: string | undefined;
  command: string;

  constructor(
    message: string,
    fields: {
      code: string;
      command: string;
      originalCode?: string;
      responseCode?: number;
      response?: string;
    },
  ) {
    super(message);
    this.name = 'SmtpError';
    this.code = fields.code;
    this.command = fields.command;
    this.originalCode = fields.originalCode;
    this.responseCode = fields.responseCode;
    this.response = fields.response;
  }
}

/** A reply of the server. */
export interface Reply {
  code: number;
  /** Every line of the reply, joined with "\n". */
  text: string;
}

/**
 * Why a connection that is not encrypted goes no further, and what to do. Said before AUTH, so
 * the password was never sent.
 */
export function plainTextRefused(options: SessionOptions, offered: boolean): SmtpError {
  const server = `${options.host}:${options.port}`;
  let message: string;
  if (options.auth && options.ignoreTLS) {
    message =
      `the TLS policy is "none", so the password for ${server} was not sent: it would cross the network in clear. ` +
      'Set NEWSLETTER_SMTP_TLS=required (the default), or remove the user and password for a relay without AUTH';
  } else if (options.auth) {
    message =
      `${server} does not offer STARTTLS, so the password was not sent: it would cross the network in clear ` +
      "(someone on the path may have removed STARTTLS from the server's reply). " +
      'Enable STARTTLS on the server, or use smtps:// (TLS from the start, port 465)';
  } else {
    message =
      `${server} does not offer STARTTLS and NEWSLETTER_SMTP_TLS is "required": nothing was sent. ` +
      'Enable STARTTLS on the server, use smtps://, or set NEWSLETTER_SMTP_TLS=opportunistic (or none for a loopback relay)';
  }
  return new SmtpError(message, { code: 'ETLS', command: offered ? 'AUTH' : 'STARTTLS' });
}

export function replyError(command: string, reply: Reply, code = 'EENVELOPE'): SmtpError {
  const response = reply.text;
  return new SmtpError(`${command} failed: ${response}`, {
    code: command === 'DATA' ? 'EMESSAGE' : code,
    command,
    responseCode: reply.code,
    response,
  });
}

export function authError(command: string, reply: Reply): SmtpError {
  return new SmtpError('Invalid login', {
    code: 'EAUTH',
    command,
    responseCode: reply.code,
    response: reply.text,
  });
}

/** Host names that do not exist (a typo), as opposed to a resolver that failed (EAI_AGAIN). */
const UNKNOWN_HOST = new Set(['ENOTFOUND', 'EAI_NONAME']);
/** The chain does not lead to a CA we trust: the one case NEWSLETTER_SMTP_CA fixes. */
const UNTRUSTED_CERTIFICATE = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
]);

export function connectionError(error: Error, command: string, host?: string): SmtpError {
  const code = (error as NodeJS.ErrnoException).code;
  if (host !== undefined && code !== undefined && UNKNOWN_HOST.has(code)) {
    return new SmtpError(
      `the SMTP host ${host} does not resolve (${code}): check the host name in NEWSLETTER_TRANSPORT`,
      { code: 'EDNS', command, originalCode: code },
    );
  }
  if (host !== undefined && code !== undefined && UNTRUSTED_CERTIFICATE.has(code)) {
    return new SmtpError(
      `the certificate of ${host} is not trusted (${error.message}): if a private CA signed it, ` +
        "set NEWSLETTER_SMTP_CA to that CA's PEM file",
      { code, command, originalCode: code },
    );
  }
  return new SmtpError(error.message, {
    code: isTlsProblem(error) ? (code ?? 'ETLS') : 'ECONNECTION',
    command,
    ...(code ? { originalCode: code } : {}),
  });
}

function isTlsProblem(error: Error): boolean {
  const code = (error as NodeJS.ErrnoException).code ?? '';
  return /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_/.test(code);
}

export function connectionClosed(command: string): SmtpError {
  return new SmtpError('Connection closed unexpectedly', { code: 'ECONNECTION', command });
}
