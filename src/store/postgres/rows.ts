/**
 * Row shapes of the PostgreSQL tables and their mapping to domain types. bigint arrives as a
 * number (see connection.ts), jsonb and json as parsed values.
 */
import type { CandidateRow } from '../claim-candidate.js';
import type {
  Delivery,
  DeliveryState,
  Newsletter,
  NewsletterStatus,
  RunInfo,
  Subscriber,
  VerifiedBody,
} from '../../domain/types.js';

export interface NewsletterRow {
  id: number;
  subject: string;
  template_path: string;
  from_address: string | null;
  status: string;
  scheduled_at: number | null;
  body: VerifiedBody | null;
  failure_reason: string | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  started_by_run: number | null;
  updated_at: number;
  lists: string[];
}

export function toNewsletter(row: NewsletterRow): Newsletter {
  return {
    id: row.id,
    subject: row.subject,
    templatePath: row.template_path,
    from: row.from_address,
    lists: [...row.lists].sort(),
    status: row.status as NewsletterStatus,
    scheduledAt: row.scheduled_at,
    failureReason: row.failure_reason,
    body: row.body,
    createdAt: row.created_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    startedByRun: row.started_by_run,
    updatedAt: row.updated_at,
  };
}

export interface SubscriberRow {
  id: number;
  email: string;
  address: string;
  name: string;
  fields: Record<string, string>;
  status: string;
  created_at: number;
  lists: string[];
}

export function toSubscriber(row: SubscriberRow): Subscriber {
  return {
    id: row.id,
    email: row.email,
    address: row.address,
    name: row.name,
    fields: row.fields,
    status: row.status as Subscriber['status'],
    lists: [...row.lists].sort(),
    createdAt: row.created_at,
  };
}

export interface RunRow {
  id: number;
  host_id: string;
  hostname: string;
  pid: number;
  started_at: number;
  lease_until: number;
  ended_at: number | null;
  outcome: string | null;
  sent: number;
  failed: number;
  retry: number;
  unknown: number;
  skipped: number;
  error: string | null;
}

export function toRun(row: RunRow): RunInfo {
  return {
    id: row.id,
    hostId: row.host_id,
    hostname: row.hostname,
    pid: row.pid,
    startedAt: row.started_at,
    leaseUntil: row.lease_until,
    endedAt: row.ended_at,
    outcome: row.outcome,
    counts: {
      sent: row.sent,
      failed: row.failed,
      retry: row.retry,
      unknown: row.unknown,
      skipped: row.skipped,
    },
    error: row.error,
  };
}

export interface DeliveryRow {
  id: number;
  newsletter_id: number;
  address: string;
  state: string;
  run_id: number | null;
  attempts: number;
  next_attempt_at: number | null;
  message_id: string;
  smtp_reply: string | null;
  queue_id: string | null;
  reason: string | null;
  updated_at: number;
}

export function toDelivery(row: DeliveryRow): Delivery {
  return {
    id: row.id,
    newsletterId: row.newsletter_id,
    address: row.address,
    state: row.state as DeliveryState,
    runId: row.run_id,
    attempts: row.attempts,
    nextAttemptAt: row.next_attempt_at,
    messageId: row.message_id,
    smtpReply: row.smtp_reply,
    queueId: row.queue_id,
    reason: row.reason,
    updatedAt: row.updated_at,
  };
}

/** A newsletter with its list names. */
export const NEWSLETTER_SELECT = `
  SELECT n.*, coalesce((SELECT json_agg(l.name) FROM newsletter_lists nl JOIN lists l ON l.id = nl.list_id
                        WHERE nl.newsletter_id = n.id), '[]') AS lists
  FROM newsletters n`;

export const SUBSCRIBER_SELECT = `
  SELECT s.*, coalesce((SELECT json_agg(l.name) FROM memberships m JOIN lists l ON l.id = m.list_id
                        WHERE m.subscriber_id = s.id), '[]') AS lists
  FROM subscribers s`;

/**
 * A recipient about to be claimed (or a due retry), with what personalisation needs: the shared
 * candidate (jsonb arrives parsed), and the ledger row's own columns.
 */
export interface ClaimCandidate extends CandidateRow {
  id: number;
  message_id: string;
  attempts: number;
}
