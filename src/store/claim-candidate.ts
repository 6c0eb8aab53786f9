/**
 * What both stores decide the same way about a recipient they are about to claim: why it is
 * skipped, how its row becomes a ClaimedDelivery, and when a newsletter's audience is closed.
 * The SQL differs per database; these rules must not.
 */
import type { ClaimedDelivery } from '../domain/types.js';

/** A subscriber (or retry row) as the claim queries select it; `fields` already parsed. */
export interface CandidateRow {
  subscriber_id: number | null;
  email: string | null;
  address: string;
  name: string | null;
  fields: Record<string, string> | null;
  status: string | null;
  suppressed: string | null;
}

/** Suppressed first, then unsubscribed, then removed since it was claimed. */
export function reasonToSkip(row: Pick<CandidateRow, 'suppressed' | 'status'>): string | null {
  if (row.suppressed) return `suppressed: ${row.suppressed}`;
  if (row.status === 'unsubscribed') return 'unsubscribed';
  if (row.status === null) return 'subscriber removed';
  return null;
}

export function toClaimed(
  newsletterId: number,
  row: CandidateRow,
  deliveryId: number,
  messageId: string,
  attempts: number,
): ClaimedDelivery {
  return {
    deliveryId,
    newsletterId,
    subscriberId: row.subscriber_id,
    email: row.email ?? row.address,
    address: row.address,
    name: row.name ?? '',
    fields: row.fields ?? {},
    messageId,
    attempts,
  };
}

/**
 * Once a newsletter has been sent (or failed), its audience is closed: a `reconcile --resend` that
 * reopens it for its unknown rows must not mail people who joined its lists afterwards.
 */
export function audienceClosed(row: { status: string; finished_at: unknown }): boolean {
  return (
    row.status === 'sent' ||
    row.status === 'failed' ||
    (row.status === 'sending' && row.finished_at !== null && row.finished_at !== undefined)
  );
}
