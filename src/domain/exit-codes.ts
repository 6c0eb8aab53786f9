/**
 * The exit codes crontabs and scripts rely on. Documented in the README; never renumber.
 */
export const ExitCode = {
  /** Everything worked (or there was nothing to do). */
  ok: 0,
  /** A bug or an unexpected failure: the message says what. */
  internal: 1,
  /** Bad command line: unknown command, missing or malformed option. */
  usage: 2,
  /** Configuration (.env, environment, flags) is invalid or incomplete. */
  config: 3,
  /** Input rejected: a CSV, a template, an unknown list or newsletter. Nothing was changed. */
  input: 4,
  /** The database cannot be used: unwritable, not a database, schema older than the code, busy. */
  database: 5,
  /** Another send-due run holds the lock on this database. Nothing was done. */
  lockHeld: 6,
  /** This database is bound to another host (a cloned server?). Nothing was sent. */
  cloneRefused: 7,
  /** The run finished but some recipients failed, are unknown, or a newsletter failed to build. */
  partlyFailed: 8,
  /** A transient problem (SMTP unreachable, throttled): the next run continues. */
  transient: 9,
  /** Stopped by SIGTERM or SIGINT after recording what was in flight. */
  interrupted: 10,
  /** The run lost its lease or its lock was compromised: it stopped, its late writes were refused. */
  lostLease: 11,
  /**
   * `bounces receive` only (sysexits' EX_TEMPFAIL): the message was not handled (database busy or
   * out of reach, bad configuration, a bug); the MTA keeps it and tries again.
   */
  tempFail: 75,
} as const;

export type ExitCodeName = keyof typeof ExitCode;
export type ExitCodeValue = (typeof ExitCode)[ExitCodeName];
