/**
 * Row shapes of the tables, as both databases return them, and their mapping to domain types.
 * The one difference between the two is how a JSON column arrives (a newsletter's body and lists,
 * a subscriber's fields and lists): SQLite hands over the text, PostgreSQL (json, jsonb) the
 * parsed value. Each dialect picks its reader (`rowsOf('text')`, `rowsOf('parsed')`); everything
 * else is written here once. bigint arrives as a number on PostgreSQL too (postgres/connection.ts).
 */
import type {
  ClaimedDelivery,
  Delivery,
  DeliveryState,
  Newsletter,
  NewsletterStatus,
  PendingRecipient,
  RunInfo,
  Subscriber,
  VerifiedBody,
} from '../domain/types.js';
import { segmentFromColumn } from '../domain/segment.js';
import { readStoredTemplate } from '../domain/stored-template.js';
import type { ClaimRequest, ClaimResult } from '../engine/store.js';
import type { Suppression } from './store.js';

/** A JSON column as the driver returns it: text (SQLite) or already parsed (PostgreSQL). */
type JsonColumn = unknown;

export interface NewsletterRow {
  id: number;
  subject: string;
  template_path: string;
  from_address: string | null;
  status: string;
  scheduled_at: number | null;
  body: JsonColumn | null;
  failure_reason: string | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  started_by_run: number | null;
  pruned_at: number | null;
  updated_at: number;
  /** Its list names, a JSON array (NEWSLETTER_SELECT of each dialect). */
  lists: JsonColumn | null;
  /** Text in both dialects (a JSON array of files): src/domain/stored-template.ts. */
  template_source: string | null;
  template_stored_at: number | null;
  template_compiled: string | null;
  scheduled_zone: string | null;
  /** JSON, NULL for the whole lists: src/domain/segment.ts. */
  segment: JsonColumn | null;
}

export interface SubscriberRow {
  id: number;
  email: string;
  address: string;
  name: string;
  fields: JsonColumn;
  status: string;
  created_at: number;
  /** Its list names, a JSON array (SUBSCRIBER_SELECT of each dialect). */
  lists: JsonColumn | null;
  /** The names of the lists it left (list_opt_outs), a JSON array. */
  left_lists: JsonColumn | null;
}

export interface RunRow {
  id: number;
  host_id: string;
  hostname: string;
  pid: number;
  /** Absent on a database migrated before 010 (SQLite) / 011 (PostgreSQL): read as null. */
  pid_scope?: string | null;
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

/**
 * A recipient as the claim and the dry run select it: a subscriber with no ledger row yet, or a
 * due `retry` row joined to its subscriber (whose columns are null once the subscriber is gone).
 */
export interface CandidateRow {
  subscriber_id: number | null;
  email: string | null;
  address: string;
  name: string | null;
  fields: JsonColumn | null;
  status: string | null;
  /** The suppression's reason, if the address is suppressed. */
  suppressed: string | null;
}

/** A due `retry` row as the claim selects it: the candidate and the ledger row's own columns. */
export interface RetryRow extends CandidateRow {
  id: number;
  message_id: string;
  attempts: number;
}

/** CandidateRows: subscribers `s` with their suppression; the caller adds WHERE, order and limit. */
export const SELECT_CANDIDATES = `SELECT s.id AS subscriber_id, s.email, s.address, s.name, s.fields, s.status,
         sup.reason AS suppressed
  FROM subscribers s LEFT JOIN suppressions sup ON sup.address = s.address`;

/** RetryRows: ledger rows `d` with their subscriber (if still there) and suppression. */
export const SELECT_RETRIES = `SELECT d.id, d.subscriber_id, d.address, d.message_id, d.attempts, s.email, s.name, s.fields,
         s.status, sup.reason AS suppressed
  FROM deliveries d
  LEFT JOIN subscribers s ON s.address = d.address
  LEFT JOIN suppressions sup ON sup.address = d.address`;

export interface SuppressionRow {
  address: string;
  reason: string;
  source: string;
  created_at: number;
  report_id: string | null;
}

export function toRun(row: RunRow): RunInfo {
  return {
    id: row.id,
    hostId: row.host_id,
    hostname: row.hostname,
    pid: row.pid,
    pidScope: row.pid_scope ?? null,
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

export function toSuppression(row: SuppressionRow): Suppression {
  return {
    address: row.address,
    reason: row.reason,
    source: row.source,
    createdAt: row.created_at,
    reportId: row.report_id ?? null,
  };
}

/** What a claim returns when it takes nothing: the newsletter is no longer sending, or the run ended. */
export function nothingClaimed(request: ClaimRequest, stillSending: boolean): ClaimResult {
  return { claimed: [], skipped: 0, lastSubscriberId: request.afterSubscriberId, stillSending };
}

/** The mappings that read JSON columns, for one dialect. */
export interface RowReaders {
  toNewsletter(row: NewsletterRow): Newsletter;
  toSubscriber(row: SubscriberRow): Subscriber;
  /** A claimed candidate as the engine sends it. */
  toClaimed(
    newsletterId: number,
    row: CandidateRow,
    deliveryId: number,
    messageId: string,
    attempts: number,
  ): ClaimedDelivery;
  /** A candidate as the dry run shows it, with the reason it would be skipped. */
  toPending(newsletterId: number, row: CandidateRow, skipReason: string | null): PendingRecipient;
}

export function rowsOf(json: 'text' | 'parsed'): RowReaders {
  const read = <T>(value: JsonColumn): T => (json === 'text' ? JSON.parse(value as string) : value) as T;
  const names = (value: JsonColumn | null): string[] => (value ? [...read<string[]>(value)].sort() : []);
  const fields = (value: JsonColumn | null): Record<string, string> =>
    value ? read<Record<string, string>>(value) : {};
  const recipient = (newsletterId: number, row: CandidateRow) => ({
    newsletterId,
    subscriberId: row.subscriber_id,
    email: row.email ?? row.address,
    address: row.address,
    name: row.name ?? '',
    fields: fields(row.fields),
  });
  return {
    toNewsletter: (row) => ({
      id: row.id,
      subject: row.subject,
      templatePath: row.template_path,
      from: row.from_address,
      lists: names(row.lists),
      status: row.status as NewsletterStatus,
      scheduledAt: row.scheduled_at,
      failureReason: row.failure_reason,
      body: row.body ? read<VerifiedBody>(row.body) : null,
      createdAt: row.created_at,
      startedAt: row.started_at,
      finishedAt: row.finished_at,
      startedByRun: row.started_by_run,
      prunedAt: row.pruned_at,
      updatedAt: row.updated_at,
      template: readStoredTemplate(row.template_source, row.template_stored_at, row.template_compiled),
      scheduledZone: row.scheduled_zone,
      segment: segmentFromColumn(row.segment ?? null),
    }),
    toSubscriber: (row) => ({
      id: row.id,
      email: row.email,
      address: row.address,
      name: row.name,
      fields: fields(row.fields),
      status: row.status as Subscriber['status'],
      lists: names(row.lists),
      leftLists: names(row.left_lists),
      createdAt: row.created_at,
    }),
    toClaimed: (newsletterId, row, deliveryId, messageId, attempts) => ({
      deliveryId,
      ...recipient(newsletterId, row),
      messageId,
      attempts,
    }),
    toPending: (newsletterId, row, skipReason) => ({ ...recipient(newsletterId, row), skipReason }),
  };
}
