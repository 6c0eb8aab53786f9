/**
 * One table decides what a PostgreSQL error means (src/store/postgres/pg-errors.ts): a lost or
 * busy server is transient (exit 9, the next run continues); a refused login, a missing database
 * or a write on a read-only connection needs a person (exit 5); anything else is a bug, left as is.
 * The errors below have the shapes pg gives them (a SQLSTATE `code`, a Node socket `code`, or
 * only a message).
 */
import { describe, expect, it } from 'vitest';
import { DatabaseError, TransientDatabaseError } from '../../src/domain/errors.js';
import { ExitCode } from '../../src/domain/exit-codes.js';
import { describePgError, isConnectionLoss } from '../../src/store/postgres/pg-errors.js';

const URL = 'postgres://newsletter:s3cret@db.internal:5432/newsletter';

function pgError(message: string, code?: string): Error {
  return Object.assign(new Error(message), code === undefined ? {} : { code });
}

describe('describePgError', () => {
  it.each([
    [
      'terminated backend',
      pgError('terminating connection due to administrator command', '57P01'),
      /Lost the connection/,
    ],
    [
      'crash shutdown',
      pgError('terminating connection because of crash of another server process', '57P02'),
      /Lost the connection/,
    ],
    ['starting up', pgError('the database system is starting up', '57P03'), /starting up or shutting down/],
    ['no free slot', pgError('sorry, too many clients already', '53300'), /no free connection slot/],
    ['connection exception', pgError('connection failure', '08006'), /Lost the connection/],
    [
      'idle transaction ended',
      pgError('terminating connection due to idle-in-transaction timeout', '25P03'),
      /ended this session/,
    ],
    ['serialisation failure', pgError('could not serialize access', '40001'), /busy transaction/],
    ['deadlock', pgError('deadlock detected', '40P01'), /busy transaction/],
    ['lock not available', pgError('could not obtain lock on row', '55P03'), /busy transaction/],
    ['refused', pgError('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED'), /Cannot reach/],
    ['reset', pgError('read ECONNRESET', 'ECONNRESET'), /Lost the connection/],
    ['broken pipe', pgError('write EPIPE', 'EPIPE'), /Lost the connection/],
    ['socket timeout', pgError('connect ETIMEDOUT', 'ETIMEDOUT'), /Cannot reach/],
    ['closed socket', pgError('Connection terminated unexpectedly'), /Lost the connection/],
    ['connect timeout', pgError('Connection terminated due to connection timeout'), /Cannot reach/],
    ['pool timeout', pgError('timeout exceeded when trying to connect'), /Cannot reach/],
    [
      'client already failed',
      pgError('Client has encountered a connection error and is not queryable'),
      /Lost the connection/,
    ],
  ])('%s: transient, says what happened and that the next run continues', (_, error, says) => {
    const described = describePgError(error, URL);
    expect(described).toBeInstanceOf(TransientDatabaseError);
    expect((described as TransientDatabaseError).exitCode).toBe(ExitCode.transient);
    expect(described.message).toMatch(says);
    expect((described as TransientDatabaseError).details.join(' ')).toMatch(/the next run continues/);
    expect(isConnectionLoss(error) || /busy/.test(described.message)).toBe(true);
  });

  it.each([
    [
      'wrong password',
      pgError('password authentication failed for user "newsletter"', '28P01'),
      /refused the login/,
    ],
    ['no such role', pgError('role "x" does not exist', '28000'), /refused the login/],
    ['no such database', pgError('database "newsletter" does not exist', '3D000'), /does not exist/],
    ['no such host', pgError('getaddrinfo ENOTFOUND db.internl', 'ENOTFOUND'), /does not resolve/],
    ['read-only', pgError('cannot execute UPDATE in a read-only transaction', '25006'), /read-only/],
    [
      'prepared statement gone (a pooler)',
      pgError('prepared statement "newsletter_3" does not exist', '26000'),
      /lost its prepared statements/,
    ],
    [
      'prepared statement name taken (a pooler)',
      pgError('prepared statement "newsletter_1" already exists', '42P05'),
      /lost its prepared statements/,
    ],
  ])('%s: needs a person, exit 5', (_, error, says) => {
    const described = describePgError(error, URL);
    expect(described).toBeInstanceOf(DatabaseError);
    expect((described as DatabaseError).exitCode).toBe(ExitCode.database);
    expect(described.message).toMatch(says);
    expect(described.message).not.toContain('s3cret');
  });

  it('a pooler that loses prepared statements: the fix is named', () => {
    const described = describePgError(
      pgError('prepared statement "newsletter_3" does not exist', '26000'),
      URL,
    );
    expect((described as DatabaseError).details.join(' ')).toMatch(/prepared_statements=off/);
    expect((described as DatabaseError).details.join(' ')).toMatch(/max_prepared_statements/);
  });

  it('never shows the password', () => {
    const described = describePgError(pgError('connect ECONNREFUSED', 'ECONNREFUSED'), URL);
    expect(described.message).not.toContain('s3cret');
    expect(described.message).toContain('db.internal');
  });

  it('leaves a bug as it is', () => {
    const bug = pgError('syntax error at or near "SELEC"', '42601');
    expect(describePgError(bug, URL)).toBe(bug);
    expect(isConnectionLoss(bug)).toBe(false);
  });
});
