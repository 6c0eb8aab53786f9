import type { SendOutcome } from '../domain/types.js';

/**
 * A failed `Transport.verify()`. The message is safe to print (never a password); `outcome`
 * says what a send would have met: `fatal` (authentication, configuration) or `retry`
 * (unreachable, throttled), so that `doctor` and the engine can tell the two apart.
 */
export class TransportCheckError extends Error {
  readonly outcome: SendOutcome;

  constructor(message: string, outcome: SendOutcome) {
    super(message);
    this.name = 'TransportCheckError';
    this.outcome = outcome;
  }
}
