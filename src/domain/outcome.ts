/**
 * What one attempt to hand a message over means for its ledger row: DESIGN's "SMTP outcomes",
 * as a pure function of the failure (the SMTP client's `code`, `responseCode`, `response`,
 * `command`: src/transport/smtp-session.ts keeps the fields and codes of nodemailer's errors) and
 * of how far the message got (`phase`, tracked by the transport per message, because a connection
 * failure's code alone does not say whether the message data was written).
 *
 * | failure                                                        | phase       | outcome                          |
 * | -------------------------------------------------------------- | ----------- | -------------------------------- |
 * | 4xx reply, any step                                            | any         | retry                            |
 * | 421 or 454 reply; any 4xx at AUTH                              | any         | retry, throttled                 |
 * | 5xx at RCPT TO or after DATA                                   | any         | failed                           |
 * | … with an enhanced 5.1.x code, or "user unknown" at RCPT TO    | any         | failed, suppress                 |
 * | … with 5.1.7 / 5.1.8 (the sender's address is refused)         | any         | fatal                            |
 * | … "relay access denied", or 530 (authentication required)      | any         | fatal (configuration)            |
 * | 5xx at greeting, EHLO, STARTTLS, AUTH or MAIL FROM             | before-data | fatal (configuration)            |
 * | EAUTH, ENOAUTH, EOAUTH2 (no 4xx reply)                         | before-data | fatal (authentication)           |
 * | ECONFIG, ETLS, EREQUIRETLS, certificate errors, access refused | before-data | fatal (configuration)            |
 * | the host does not resolve (ENOTFOUND, EAI_NONAME: a typo)      | before-data | fatal (configuration)            |
 * | refused, reset, timed out, DNS down (EAI_AGAIN), closed        | before-data | retry, unreachable               |
 * | anything else without a reply code                             | before-data | retry                            |
 * | anything without a 4xx/5xx reply                               | data-sent   | unknown (may have been delivered)|
 *
 * `phase` is `data-sent` from the moment the last byte of the message could have been handed
 * to the socket (the final "." follows it): a failure without a reply after that point may
 * have been delivered, and resending it is the operator's decision (`reconcile`), never ours.
 *
 * `reply` keeps the server's words and the step, e.g. `550 5.1.1 <x@y>: user unknown (RCPT TO)`,
 * with every AUTH argument, base64 credential line and given secret replaced by `***`.
 */
import { maskSecrets, secretForms } from './secret-forms.js';
import type { SendOutcome } from './types.js';

export type SmtpPhase = 'before-data' | 'data-sent';

/** The fields of an SMTP client (or Node system) error that classification reads. */
export interface SmtpFailure {
  /** The client's code (`EAUTH`, `ECONNECTION`, …, as nodemailer names them) or a Node system code (`ECONNREFUSED`, …). */
  code?: string | undefined;
  /** The system code the client replaced with its own, e.g. `ECONNREFUSED` under `ESOCKET`. */
  originalCode?: string | undefined;
  responseCode?: number | undefined;
  response?: string | undefined;
  /** The SMTP step: `CONN`, `EHLO`, `AUTH PLAIN`, `MAIL FROM`, `RCPT TO`, `DATA`, `API`, … */
  command?: string | undefined;
  message?: string | undefined;
}

type SentOutcome = Extract<SendOutcome, { kind: 'sent' }>;
/** What one attempt can come to; `withdrawn` is the pool's, for messages it never tried. */
type AttemptOutcome = Exclude<SendOutcome, { kind: 'withdrawn' }>;

const MAX_REPLY = 1000;

const AUTH_FATAL_CODES = new Set(['EAUTH', 'ENOAUTH', 'EOAUTH2']);
const CONFIG_FATAL_CODES = new Set([
  'ECONFIG',
  'ETLS',
  'EREQUIRETLS',
  'EFILEACCESS',
  'EURLACCESS',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'ERR_SSL_WRONG_VERSION_NUMBER',
]);
/**
 * DNS says the name does not exist: a typo in NEWSLETTER_TRANSPORT far more often than an outage
 * (a resolver that cannot answer is EAI_AGAIN), and retrying every minute would hide it.
 */
const UNKNOWN_HOST_CODES = new Set(['ENOTFOUND', 'EAI_NONAME']);
const CONNECTION_CODES = new Set([
  'ECONNECTION',
  'ESOCKET',
  'ETIMEDOUT',
  'EDNS',
  'EPROXY',
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'EPIPE',
]);
/** Steps before the envelope whose 5xx says "this server will not take mail from us at all". */
const SESSION_STEPS = /^(CONN|EHLO|HELO|LHLO|STARTTLS|AUTH\b|MAIL FROM)/i;
/** Every recipient would get the same answer: our setup is wrong, not this address. */
const RELAY_DENIED =
  /\brelay(?:ing)?\b[^.;]{0,30}\b(?:denied|not permitted|prohibited|refused)|\b(?:unable|not permitted|not allowed) to relay\b/i;
const USER_UNKNOWN =
  /\b(user|recipient|mailbox|address|account)\b[^.;]{0,40}\b(unknown|not found|does ?n[o']t exist|not exist|no such)\b|\b(unknown|no such|invalid|non-?existent)\s+(user|recipient|mailbox|account)\b/i;

/** Classifies a failed attempt. `secrets` (the SMTP password, …) are redacted from `reply`. */
export function classifySmtpFailure(
  failure: SmtpFailure,
  phase: SmtpPhase,
  secrets: readonly string[] = [],
): AttemptOutcome {
  const reply = describeFailure(failure, phase, secrets);
  const code = validReplyCode(failure);
  const command = (failure.command ?? '').trim().toUpperCase();
  const codes = [failure.code, failure.originalCode].filter((c): c is string => Boolean(c));

  if (code !== null && code >= 400 && code < 500) {
    // A temporary refusal of authentication is the whole session's problem: stop claiming too.
    const throttled = code === 421 || code === 454 || command.startsWith('AUTH');
    return { kind: 'retry', reply, throttled, unreachable: false };
  }

  if (code !== null && code >= 500) {
    const enhanced = enhancedCode(failure.response);
    if (
      enhanced === '5.1.7' ||
      enhanced === '5.1.8' ||
      code === 530 ||
      RELAY_DENIED.test(failure.response ?? '')
    ) {
      return { kind: 'fatal', reply };
    }
    if (
      phase === 'before-data' &&
      (SESSION_STEPS.test(command) || codes.some((c) => AUTH_FATAL_CODES.has(c)))
    ) {
      return { kind: 'fatal', reply };
    }
    const suppress =
      enhanced?.startsWith('5.1.') === true ||
      (command === 'RCPT TO' && [550, 551, 553].includes(code) && USER_UNKNOWN.test(failure.response ?? ''));
    return { kind: 'failed', reply, suppress };
  }

  // No usable reply. After the data, the server may have the message and only the reply was lost.
  if (phase === 'data-sent') return { kind: 'unknown', reply };

  if (
    codes.some((c) => AUTH_FATAL_CODES.has(c) || CONFIG_FATAL_CODES.has(c) || UNKNOWN_HOST_CODES.has(c)) ||
    isCertificateError(failure)
  ) {
    return { kind: 'fatal', reply };
  }
  const unreachable = codes.some((c) => CONNECTION_CODES.has(c));
  return { kind: 'retry', reply, throttled: false, unreachable };
}

/** How a sendmail-compatible program (`sendmail -i -f from to`) ended, or why it never ran. */
export interface SendmailFailure {
  /** A spawn error: `ENOENT`, `EACCES`, … */
  code?: string | undefined;
  exitCode?: number | undefined;
  signal?: string | undefined;
  /** The whole message was written to its standard input before it ended. */
  messageWritten?: boolean | undefined;
  message?: string | undefined;
}

/**
 * | sendmail                                            | outcome                          |
 * | --------------------------------------------------- | -------------------------------- |
 * | not found, not executable (ENOENT, EACCES, 126/127) | fatal (configuration)            |
 * | exit 78 (EX_CONFIG)                                 | fatal                            |
 * | exit 75 (EX_TEMPFAIL)                               | retry                            |
 * | exit 0 before reading the whole message             | retry                            |
 * | killed by a signal after reading the message        | unknown (it may have queued it)  |
 * | any other exit code                                 | failed, with the code            |
 */
export function classifySendmailFailure(failure: SendmailFailure, path: string): AttemptOutcome {
  const detail = failure.message ? `: ${redactSecrets(oneLine(failure.message))}` : '';
  const code = failure.code;
  if (code === 'ENOENT' || code === 'EACCES' || code === 'ENOTDIR' || code === 'EPERM') {
    return { kind: 'fatal', reply: `cannot run ${path} (${code})` };
  }
  const exit = failure.exitCode;
  if (exit === 126 || exit === 127 || exit === 78) {
    return { kind: 'fatal', reply: `${path} exited with code ${exit}${exit === 78 ? ' (EX_CONFIG)' : ''}` };
  }
  if (exit === 75) {
    return {
      kind: 'retry',
      reply: `${path} exited with code 75 (EX_TEMPFAIL)`,
      throttled: false,
      unreachable: false,
    };
  }
  if (failure.signal) {
    const reply = `${path} was killed by ${failure.signal}`;
    return failure.messageWritten === false
      ? { kind: 'retry', reply, throttled: false, unreachable: false }
      : { kind: 'unknown', reply };
  }
  if (exit !== undefined && exit !== 0) {
    return { kind: 'failed', reply: `${path} exited with code ${exit}`, suppress: false };
  }
  // Exit 0 before the whole message was written, a broken pipe, a stream error: not queued.
  return {
    kind: 'retry',
    reply: `${path} did not take the message${detail}`,
    throttled: false,
    unreachable: false,
  };
}

/** A 2xx after the final ".": sent, with the reply and the queue id when the reply names one. */
export function classifySuccess(response: string): SentOutcome {
  return { kind: 'sent', reply: oneLine(response), queueId: extractQueueId(response) };
}

/**
 * The queue id of a typical final 250 reply, or null:
 * Postfix `250 2.0.0 Ok: queued as 4F2Xb91vMz`, Exim `250 OK id=1r2AbC-000123-Xy`,
 * Sendmail `250 2.0.0 43K1q3Zx012345 Message accepted for delivery`, Gmail
 * `250 2.0.0 OK  1700000000 a1b2c3.4 - gsmtp`, Amazon SES `250 Ok 0100018b…-000000`,
 * Microsoft `250 2.6.0 <id@host> [InternalId=…] Queued mail for delivery`.
 */
export function extractQueueId(response: string): string | null {
  const text = response.trim();
  const patterns = [
    /\bqueued as:?\s+<?([^\s<>;,]+)>?/i,
    /\bid=<?([^\s<>;,]+)>?/i,
    /^250[ -](?:\d\.\d\.\d\s+)?OK\s+\d+\s+(\S+)\s+-\s+gsmtp/i,
    /^250[ -](?:\d\.\d\.\d\s+)?(\S+)\s+Message accepted for delivery/i,
    /^250[ -](?:\d\.\d\.\d\s+)?<([^\s<>]+)>\s+.*queued/i,
    /^250[ -]Ok\s+([0-9a-f]+(?:-[0-9a-f]+)+)\s*$/i,
  ];
  for (const pattern of patterns) {
    const id = pattern.exec(text)?.[1];
    if (id) return id;
  }
  return null;
}

/**
 * Replaces credentials in any text bound for a log or a ledger column: the argument of an AUTH
 * command, lines that are nothing but base64 (the AUTH LOGIN dialogue), `password=…` pairs,
 * and every given secret with its base64 and URL-encoded forms.
 */
export function redactSecrets(text: string, secrets: readonly string[] = []): string {
  const forms = secrets.flatMap((secret) => secretForms(secret)).sort((a, b) => b.length - a.length);
  return maskSecrets(text, forms)
    .replace(
      /\b(AUTH\s+(?:PLAIN|LOGIN|CRAM-MD5|DIGEST-MD5|XOAUTH2?|OAUTHBEARER|NTLM|SCRAM-[A-Z0-9-]+))\s+\S+/g,
      '$1 ***',
    )
    .replace(/\b(pass(?:word)?|passwd|pwd|secret)(\s*[=:]\s*)\S+/gi, '$1$2***')
    .replace(/^[A-Za-z0-9+/]{12,}={0,2}$/gm, '***');
}

function validReplyCode(failure: SmtpFailure): number | null {
  const fromField = failure.responseCode;
  if (typeof fromField === 'number' && fromField >= 200 && fromField < 600) return fromField;
  const fromText = /^([2-5]\d\d)[ -]/.exec(failure.response?.trim() ?? '')?.[1];
  return fromText ? Number(fromText) : null;
}

/** `5.1.1` from `550 5.1.1 <x@y>: …` or `550-5.1.1 …`; null when the reply has none. */
function enhancedCode(response: string | undefined): string | null {
  const match = /^[245]\d\d[ -]([245]\.\d{1,3}\.\d{1,3})\b/.exec(response?.trim() ?? '');
  return match?.[1] ?? null;
}

function isCertificateError(failure: SmtpFailure): boolean {
  return /certificate|self[- ]signed|unable to verify/i.test(failure.message ?? '');
}

function describeFailure(failure: SmtpFailure, phase: SmtpPhase, secrets: readonly string[]): string {
  const step = failure.command ? ` (${failure.command})` : '';
  let text: string;
  if (failure.response) {
    text = `${failure.response}${step}`;
  } else {
    const codes = [failure.code, failure.originalCode].filter(Boolean).join('/');
    const message = failure.message?.trim() ?? '';
    text = `${codes || 'error'}${message ? `: ${message}` : ''}${step}`;
    if (phase === 'data-sent') text = `no reply after the message data was sent: ${text}`;
  }
  // Redacted again once flattened: joining lines must not reassemble a secret.
  return truncate(redactSecrets(flatten(redactSecrets(text, secrets)), secrets));
}

function flatten(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' / ').trim();
}

function truncate(text: string): string {
  return text.length > MAX_REPLY ? `${text.slice(0, MAX_REPLY - 1)}…` : text;
}

function oneLine(text: string): string {
  return truncate(flatten(text));
}
