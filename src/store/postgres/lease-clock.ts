/**
 * The clock leases are measured on, with several hosts: the database server's. Every host reads
 * the same clock, so a host whose own clock is minutes off neither takes over a live run's claims
 * (its `now` ahead) nor keeps a lease that has passed (its `now` behind). lease.ts uses it for
 * every lease time it writes or compares.
 *
 * The SendStore contract passes a `now` to every call, and its tests move time by passing a later
 * one. So the caller's `now` still counts, but only by its distance from this process's clock
 * (`shiftOf`): zero in production, give or take the few milliseconds since the engine read it
 * (which make a lease end a little earlier, the safe side); the distance a test moves time
 * otherwise. A host's skew cancels out: its `now` and its `Date.now()` are on the same wrong clock.
 */
import type { Millis } from '../../domain/types.js';

/** The database server's clock in epoch milliseconds, read when the statement runs, plus a shift. */
export function dbNow(shiftParameter: string): string {
  return `((extract(epoch FROM clock_timestamp()) * 1000)::bigint + ${shiftParameter}::bigint)`;
}

/** How far the caller's `now` is from this process's clock: what `dbNow` adds to the server's. */
export function shiftOf(now: Millis): number {
  return Math.round(now - Date.now());
}
