/**
 * The words written in a delivery's `reason` when a rule, not a server reply, decided its state.
 * Both stores write them and `status`, `doctor` and the tests read them: one spelling each.
 */
export const LEDGER_REASON = {
  /** A cancel stopped the row before it was handed over (or while it waited for a retry). */
  cancelled: 'cancelled',
  /** Expiry: the run's lease ran out or its process was gone while it held the row. */
  runGone: 'the run that claimed it ended without recording an outcome',
  /** The run handed the message over, then ended before it could record the reply. */
  endedBeforeRecording: 'handed to the server; the run ended before its outcome was recorded',
  /** Left `claimed` by a run that had already closed (older versions): healed at the next run. */
  stranded: 'its run had closed without recording an outcome (repaired at the next run)',
} as const;

/**
 * Why a recipient about to be claimed (or a due retry) is written `skipped` instead: suppressed
 * first, then unsubscribed, then removed since it was claimed (no subscriber row any more).
 * Null: it is sent.
 */
export function skipReason(recipient: { suppressed: string | null; status: string | null }): string | null {
  if (recipient.suppressed) return `suppressed: ${recipient.suppressed}`;
  if (recipient.status === 'unsubscribed') return 'unsubscribed';
  if (recipient.status === null) return 'subscriber removed';
  return null;
}

/**
 * The suppression `recipients remove` leaves for someone who had unsubscribed: the row goes, the
 * opt-out stays, so that a re-import from a CRM does not mail them again (issue 13).
 */
export const REMOVED_OPT_OUT = { reason: 'unsubscribed, then removed', source: 'removed' } as const;
