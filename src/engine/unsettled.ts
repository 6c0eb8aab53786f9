import type { OutcomeWrite } from '../domain/ledger.js';

/**
 * What this run holds that the database does not know yet. Whatever way the run ends, endRun
 * (end-run.ts) settles it: `outcomes` are written, `handedOver` rows without an outcome become
 * `unknown`, and every other row the run still holds was never handed over and goes back to
 * `retry`.
 */
export interface Unsettled {
  /** Given to the transport; removed once its outcome is recorded (or it came back unsent). */
  handedOver: Set<number>;
  /** Known outcomes whose write has not succeeded yet. */
  outcomes: OutcomeWrite[];
}
