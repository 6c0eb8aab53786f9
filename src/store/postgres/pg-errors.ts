/**
 * What a PostgreSQL error means for the operator, decided in one place. Two kinds matter:
 *
 * - transient (TransientDatabaseError, exit 9): the server restarted, ended this session, could
 *   not be reached, had no free slot, or gave up on a busy transaction. Nothing is wrong with the
 *   data (PostgreSQL keeps whole transactions or nothing) and the same work succeeds later, so
 *   the engine retries within its lease and the next run continues;
 * - permanent (DatabaseError, exit 5): a login refused, a database that does not exist, a write
 *   on a read-only connection. Waiting will not help; a person must change something.
 *
 * Anything else (a constraint, a syntax error: a bug) is left as it is.
 */
import { describeDatabase } from '../../domain/database-location.js';
import { DatabaseError, NewsletterError, TransientDatabaseError } from '../../domain/errors.js';

/** Socket errors of a connection that could not be made or was cut (not a wrong host name). */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN']);

/**
 * What pg says, without a code, when the connection was cut or could not be made in time:
 * "Connection terminated unexpectedly" (the server closed the socket), "Connection terminated
 * due to connection timeout", "timeout exceeded when trying to connect" (pool), and the refusal
 * of every query on a client whose connection already failed.
 */
const NETWORK_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error and is not queryable/i;

/** The connection could not be made (as opposed to made, then lost). */
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ETIMEDOUT', 'EAI_AGAIN']);
const CONNECT_TIMEOUT = /timeout exceeded when trying to connect|connection timeout/i;

/** SQLSTATEs of a session the server ended or would not start: shutdown, restart, terminated, full. */
const SESSION_ENDED_CODES = new Set(['57P01', '57P02', '57P03', '53300', '25P03']);

/** SQLSTATEs of a transaction PostgreSQL gave up on because others held the same rows. */
const BUSY_CODES = new Set(['40001', '40P01', '55P03']);

const NEXT_RUN =
  'PostgreSQL keeps whole transactions or nothing, so nothing is half-written; the next run continues where this one stopped.';

function codeOf(error: unknown): string {
  return String((error as { code?: unknown } | null)?.code ?? '');
}

function messageOf(error: unknown): string {
  return (error as Error | null)?.message ?? String(error);
}

/**
 * True when the connection itself failed (cut, refused, ended by the server), as opposed to a
 * statement the server refused. connection.ts uses it to tell a stale connection from a bug.
 */
export function isConnectionLoss(error: unknown): boolean {
  const code = codeOf(error);
  return (
    NETWORK_CODES.has(code) ||
    code.startsWith('08') ||
    SESSION_ENDED_CODES.has(code) ||
    NETWORK_MESSAGES.test(messageOf(error))
  );
}

/** Turns pg's errors into messages that say what happened and what to do; leaves bugs as they are. */
export function describePgError(error: unknown, url: string): Error {
  if (error instanceof NewsletterError) return error;
  const where = describeDatabase({ kind: 'postgres', url });
  const code = codeOf(error);
  const message = messageOf(error);
  const cause = code ? `${message} (${code})` : message;

  if (code === '28P01' || code === '28000') {
    return new DatabaseError(`PostgreSQL refused the login for ${where} (${code}).`, [
      'Check the user and password in NEWSLETTER_DATABASE, and pg_hba.conf on the server.',
    ]);
  }
  if (code === '3D000') {
    return new DatabaseError(`The database of ${where} does not exist.`, [
      'Create it first (e.g. `createdb newsletter`), then run `newsletter init`.',
    ]);
  }
  if (code === 'ENOTFOUND') {
    // A host name that does not resolve is a typo far more often than an outage (EAI_AGAIN).
    return new DatabaseError(`The host name of ${where} does not resolve (${code}).`, [
      'Check the host in NEWSLETTER_DATABASE.',
    ]);
  }
  if (code === '25006') {
    return new DatabaseError('This command opened the database read-only, but tried to write.', [
      'This is a bug in newsletter; please report it with the command you ran.',
    ]);
  }
  if (code === '26000' || code === '42P05') {
    // A named statement this connection prepared is gone, or one of its names is taken: the
    // server session is not the one it prepared it in, i.e. a transaction-mode pooler that does
    // not track prepared statements is in between (connection.ts, preparesStatements).
    return new DatabaseError(
      `The PostgreSQL connection to ${where} lost its prepared statements: ${cause}. A pooler in transaction mode is probably in between.`,
      [
        'Add prepared_statements=off to the NEWSLETTER_DATABASE URL (e.g. postgres://…/newsletter?prepared_statements=off),',
        'or let the pooler track them (pgbouncer 1.21 or later: max_prepared_statements = 100 or more).',
      ],
    );
  }
  if (code === '53300') {
    return new TransientDatabaseError(
      `The PostgreSQL server of ${where} has no free connection slot: ${cause}.`,
      [`${NEXT_RUN} If this persists, raise max_connections on the server or run fewer hosts at once.`],
    );
  }
  if (code === '57P03') {
    return new TransientDatabaseError(
      `The PostgreSQL server of ${where} is starting up or shutting down: ${cause}.`,
      [NEXT_RUN],
    );
  }
  if (BUSY_CODES.has(code)) {
    return new TransientDatabaseError(`PostgreSQL gave up on a busy transaction: ${cause}.`, [
      `Another run or an operator held the same rows. ${NEXT_RUN}`,
    ]);
  }
  if (code === '25P03') {
    return new TransientDatabaseError(`PostgreSQL ended this session of ${where}: ${cause}.`, [
      `A transaction stayed idle past the server's limit (was this process paused?). ${NEXT_RUN}`,
    ]);
  }
  if (UNREACHABLE_CODES.has(code) || CONNECT_TIMEOUT.test(message)) {
    return new TransientDatabaseError(`Cannot reach the PostgreSQL server of ${where}: ${cause}.`, [
      `It may be restarting or down, or the network in between is. ${NEXT_RUN}`,
      'If this persists, check that the server is running and reachable from this host, and the host and port in NEWSLETTER_DATABASE.',
    ]);
  }
  if (isConnectionLoss(error)) {
    return new TransientDatabaseError(`Lost the connection to the PostgreSQL server of ${where}: ${cause}.`, [
      `The server restarted, shut down or ended this session, or the network dropped it. ${NEXT_RUN}`,
    ]);
  }
  return error instanceof Error ? error : new Error(message);
}
