/**
 * Tells a client that went away from a failure of ours. A client that closes its connection in
 * the middle of a POST makes reading the body fail (`ECONNRESET`, "aborted"); that is the client's
 * doing, and anyone on the internet can do it at will. Logged as an error it would page the
 * operator and bury the real failures, so serve logs it below error level; a failure of ours (the
 * database, a bug) stays an error.
 */
import type { IncomingMessage } from 'node:http';

// What node:http and node:stream report when the peer closed the connection mid-request.
const ABORT_CODES = new Set(['ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ERR_STREAM_PREMATURE_CLOSE']);

/** True when `error` comes from the client closing `request`'s connection, not from us. */
export function isClientAbort(error: unknown, request: IncomingMessage): boolean {
  // Both the error and the socket must say so: a database connection reset (also ECONNRESET)
  // while the client is still there is our failure.
  const clientGone = request.destroyed || request.socket.destroyed;
  if (!clientGone || !(error instanceof Error)) return false;
  const code = (error as NodeJS.ErrnoException).code;
  return (code !== undefined && ABORT_CODES.has(code)) || error.message === 'aborted';
}
