import { ExitCode, type ExitCodeValue } from './exit-codes.js';

/**
 * Errors that carry their exit code. Only src/cli maps them to a process exit; everything else
 * throws or returns them.
 */
export class NewsletterError extends Error {
  readonly exitCode: ExitCodeValue;
  /** Further lines for the operator (each problem, or what to do). */
  readonly details: readonly string[];

  constructor(message: string, exitCode: ExitCodeValue, details: readonly string[] = []) {
    super(message);
    this.name = new.target.name;
    this.exitCode = exitCode;
    this.details = details;
  }
}

export class UsageError extends NewsletterError {
  constructor(message: string, details: readonly string[] = []) {
    super(message, ExitCode.usage, details);
  }
}

export class ConfigError extends NewsletterError {
  constructor(message: string, details: readonly string[] = []) {
    super(message, ExitCode.config, details);
  }
}

export class InputError extends NewsletterError {
  constructor(message: string, details: readonly string[] = []) {
    super(message, ExitCode.input, details);
  }
}

export class DatabaseError extends NewsletterError {
  constructor(message: string, details: readonly string[] = []) {
    super(message, ExitCode.database, details);
  }
}

export class LockHeldError extends NewsletterError {
  constructor(message: string, details: readonly string[] = []) {
    super(message, ExitCode.lockHeld, details);
  }
}

export class CloneRefusedError extends NewsletterError {
  constructor(message: string, details: readonly string[] = []) {
    super(message, ExitCode.cloneRefused, details);
  }
}

/** A template that does not compile or verify. Carries every problem found. */
export class BuildError extends InputError {}

/**
 * The database was busy or out of reach for longer than a run could wait (SQLite's write lock
 * held by another program, a PostgreSQL restart, a terminated connection, a lock timeout).
 * Nothing is wrong with the data: the next run continues. Exit code `transient`.
 */
export class TransientDatabaseError extends NewsletterError {
  constructor(message: string, details: readonly string[] = []) {
    super(message, ExitCode.transient, details);
  }
}
