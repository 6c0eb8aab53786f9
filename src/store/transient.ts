/**
 * Which database errors are worth waiting out. A transient error means the statement did not
 * take effect and the same call may succeed a moment later: SQLite's write lock held past the
 * busy timeout, or PostgreSQL busy (serialisation failure, deadlock, lock timeout), restarting,
 * or out of reach. Everything else (a constraint, a bug, a read-only database) is not retried.
 */
import { TransientDatabaseError } from '../domain/errors.js';

/** PostgreSQL SQLSTATEs of a busy or restarting server (connection exceptions are class 08). */
const PG_TRANSIENT = new Set(['40001', '40P01', '55P03', '57P01', '57P02', '57P03', '53300']);

export function isTransientDatabaseError(error: unknown): boolean {
  if (error instanceof TransientDatabaseError) return true;
  const code = String((error as { code?: unknown } | null)?.code ?? '');
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return true;
  return PG_TRANSIENT.has(code) || code.startsWith('08');
}
