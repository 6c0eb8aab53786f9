/**
 * One run of `send-due` (see README.md beside this file for the walk-through):
 * guard → lock → register → expire dead runs → build and begin due newsletters → claim, send,
 * record, renew, repeat → complete from the ledger → close the run.
 */
import type { Config } from '../config.js';
import { decideWrite } from '../domain/decide.js';
import { BuildError, CloneRefusedError, LockHeldError } from '../domain/errors.js';
import { domainOf, messageIdFor } from '../domain/message-id.js';
import { RateLimiter } from '../domain/rate-limiter.js';
import type {
  ClaimedDelivery,
  Millis,
  Newsletter,
  RunCounts,
  RunInfo,
  SendOutcome,
} from '../domain/types.js';
import type { EventSink } from './events.js';
import { failpoint } from './failpoints.js';
import type { BuildBody, Personaliser, PreparePersonaliser, Transport } from './ports.js';
import { patientStore } from './patient-store.js';
import { claimWithinQuota } from './quota.js';
import type { StopController, StopReason } from './stop.js';
import type { ExpiredRuns, OutcomeWrite, Store } from './store.js';

export interface RenderModule {
  buildBody: BuildBody;
  preparePersonaliser: PreparePersonaliser;
}

export interface RunLockHandle {
  readonly compromised: Error | null;
  release(): Promise<void>;
}

export interface SendDueDeps {
  config: Config;
  store: Store;
  hostId: string;
  hostname: string;
  pid: number;
  now: () => Millis;
  stop: StopController;
  events: EventSink;
  /** Takes the run lock without waiting; null when another run holds it. */
  acquireLock: (onCompromised: (error: Error) => void) => Promise<RunLockHandle | null>;
  /** Is this process (on this host) still running? Used to end the runs of crashed processes at once. */
  isProcessAlive: (pid: number) => boolean;
  /** Loaded only when something is due: MJML and nodemailer are slow to load. */
  loadRender: () => Promise<RenderModule>;
  loadTransport: () => Promise<Transport>;
  maxMessages: number | null;
  maxSeconds: number | null;
  templatesRoot: (newsletter: Newsletter) => string;
}

export interface NewsletterReport {
  id: number;
  subject: string;
  result:
    | 'began'
    | 'build-failed'
    | 'taken-by-another-run'
    | 'changed-during-build'
    | 'sent'
    | 'continuing'
    | 'cancelled';
  reason?: string;
}

export interface SendDueResult {
  idle: boolean;
  runId: number | null;
  counts: RunCounts;
  newsletters: NewsletterReport[];
  stopReason: StopReason | null;
  stopDetail: string | null;
  /** Outcome writes refused by the fence (this run had lost its claim). */
  refusedWrites: number;
  expired: ExpiredRuns;
}

/**
 * What this run holds that the database does not know yet. Whatever way the run ends, endRun
 * settles it: `outcomes` are written, `handedOver` rows without an outcome become `unknown`, and
 * every other row the run still holds was never handed over and goes back to `retry`.
 */
interface Unsettled {
  /** Given to the transport; removed once its outcome is recorded (or it came back unsent). */
  handedOver: Set<number>;
  /** Known outcomes whose write has not succeeded yet. */
  outcomes: OutcomeWrite[];
}

export async function sendDue(deps: SendDueDeps): Promise<SendDueResult> {
  const { store, config } = deps;
  const result: SendDueResult = {
    idle: false,
    runId: null,
    counts: { sent: 0, failed: 0, retry: 0, unknown: 0, skipped: 0 },
    newsletters: [],
    stopReason: null,
    stopDetail: null,
    refusedWrites: 0,
    expired: { runs: 0, unknown: 0, stranded: 0, cancelledRetries: 0 },
  };

  await guardAgainstClone(deps);

  // Nothing due and nothing sending: leave without a lock, a run row or loading anything heavy.
  const startNow = deps.now();
  if (
    (await store.dueNewsletters(startNow)).length === 0 &&
    (await store.sendingNewsletters()).length === 0
  ) {
    result.idle = true;
    return result;
  }

  const lock = await deps.acquireLock((error) => deps.stop.stop('lock-compromised', error.message));
  if (!lock) {
    throw new LockHeldError('Another send-due run holds the lock on this database; nothing was done.', [
      'It will carry on where this one would have. `newsletter runs` shows who is running.',
    ]);
  }

  let run: RunInfo;
  try {
    run = await store.registerRun({
      hostId: deps.hostId,
      hostname: deps.hostname,
      pid: deps.pid,
      now: deps.now(),
      leaseMs: config.leaseMs,
    });
  } catch (error) {
    // A busy database: nothing was claimed, so give the lock back before saying so.
    await lock.release().catch(() => undefined);
    throw error;
  }
  result.runId = run.id;
  deps.events({ type: 'run-started', runId: run.id, hostId: deps.hostId, pid: deps.pid });
  const lease = new LeaseKeeper(store, run.id, deps, run.leaseUntil);
  // From here on every store call waits out a busy or restarting database, up to the lease's end.
  const waits = new Set<string>();
  const runDeps: SendDueDeps = {
    ...deps,
    store: patientStore(store, {
      deadline: () => lease.expiresAt,
      now: deps.now,
      onWait: (method, cause) => {
        if (waits.has(method)) return;
        waits.add(method);
        deps.events({ type: 'database-busy', method, detail: (cause as Error)?.message ?? String(cause) });
      },
    }),
  };
  const unsettled: Unsettled = { handedOver: new Set(), outcomes: [] };
  let transport: Transport | null = null;
  let error: unknown = null;
  try {
    result.expired = await expireDeadRuns(runDeps, run.id);
    const render = await deps.loadRender();
    await beginDueNewsletters(runDeps, render, run.id, result);
    const sending = await runDeps.store.sendingNewsletters();
    const deadline = deps.maxSeconds === null ? null : deps.now() + deps.maxSeconds * 1000;
    const budget = { messages: deps.maxMessages, deadline };
    const limiter = new RateLimiter(config.rate, deps.now());
    for (const newsletter of sending) {
      if (deps.stop.stopped) break;
      transport ??= await deps.loadTransport();
      const report = await sendNewsletter(
        runDeps,
        render,
        { transport, limiter, lease, unsettled, runId: run.id },
        newsletter,
        budget,
        result,
      );
      result.newsletters.push(report);
    }
  } catch (thrown) {
    error = thrown;
  } finally {
    lease.stopTimer();
    await transport?.close().catch(() => undefined);
    result.stopReason = deps.stop.reason;
    result.stopDetail = deps.stop.detail;
    const ended = await endRun(runDeps, run.id, unsettled, result, error);
    error ??= ended;
    const outcome = error ? 'error' : (deps.stop.reason ?? 'ok');
    deps.events({ type: 'run-ended', runId: run.id, outcome });
    await lock.release().catch(() => undefined);
  }
  if (error) throw error;
  return result;
}

/**
 * Closes the run so that none of its rows stays `claimed`, whatever the path (promise 2): see
 * Store.endRun. Returns the error that kept it from closing (the run row then stays open, and
 * the next run's expiry settles its rows once the lease has passed), or null.
 */
async function endRun(
  deps: SendDueDeps,
  runId: number,
  unsettled: Unsettled,
  result: SendDueResult,
  error: unknown,
): Promise<unknown> {
  const outcome = error ? 'error' : (deps.stop.reason ?? 'ok');
  try {
    const settlement = await deps.store.endRun(
      runId,
      {
        outcome,
        counts: result.counts,
        error: error ? String((error as Error).message ?? error) : deps.stop.detail,
        outcomes: unsettled.outcomes,
        handedOver: [...unsettled.handedOver],
      },
      deps.now(),
    );
    for (const key of ['sent', 'failed', 'retry', 'unknown', 'skipped'] as const)
      result.counts[key] += settlement.recorded[key];
    result.counts.unknown += settlement.unknown;
    if (settlement.settled && (settlement.unknown > 0 || settlement.released > 0))
      deps.events({ type: 'run-settled', runId, unknown: settlement.unknown, released: settlement.released });
    return null;
  } catch (thrown) {
    return thrown;
  }
}

/** Promise 4: a SQLite database copied to a cloned server refuses to send there. */
async function guardAgainstClone(deps: SendDueDeps): Promise<void> {
  if (deps.store.kind !== 'sqlite') return;
  const bound = await deps.store.getMeta('host_id');
  if (bound === deps.hostId) return;
  throw new CloneRefusedError(
    bound
      ? `This database is bound to host ${bound}, but this is host ${deps.hostId}: refusing to send.`
      : `This database is not bound to any host (this is host ${deps.hostId}): refusing to send.`,
    [
      'If this server is a clone (restored from an image or a backup), its copy of the database must not send:',
      'the original may be sending the same newsletter. If this host really is the one that should send now,',
      'run `newsletter host adopt` here (and stop the cron line on the other host). `--dry-run` works anywhere.',
    ],
  );
}

async function expireDeadRuns(deps: SendDueDeps, ownRunId: number): Promise<ExpiredRuns> {
  const live = await deps.store.liveRuns();
  refuseTwinHost(deps, live, ownRunId);
  // A run of this host whose process is gone is dead now; waiting for its lease would only delay.
  const dead = live
    .filter((run) => run.id !== ownRunId && run.hostId === deps.hostId && run.hostname === deps.hostname)
    .filter((run) => !deps.isProcessAlive(run.pid))
    .map((run) => run.id);
  const expired = await deps.store.expireRuns(deps.now(), dead);
  if (expired.runs > 0 || expired.stranded > 0 || expired.cancelledRetries > 0)
    deps.events({ type: 'runs-expired', ...expired });
  return expired;
}

/**
 * Two machines that present the same host id (a clone whose identity was not regenerated, or one
 * NEWSLETTER_HOST_ID copied to several hosts) would take each other's runs for their own: the
 * dead-process shortcut above would end a live run of the other machine because its pid does not
 * exist here. With a shared (PostgreSQL) database that shows as a live run, lease not yet passed,
 * with this host id but another hostname: this run stops before it claims anything. Runs that
 * start at the same moment may both stop; that is the safe side, and the message says what to fix.
 */
function refuseTwinHost(deps: SendDueDeps, live: RunInfo[], ownRunId: number): void {
  const now = deps.now();
  const twin = live.find(
    (run) =>
      run.id !== ownRunId &&
      run.hostId === deps.hostId &&
      run.hostname !== deps.hostname &&
      run.leaseUntil >= now,
  );
  if (!twin) return;
  throw new CloneRefusedError(
    `Host id ${deps.hostId} is in use by a live run on another machine (${twin.hostname}, run ${twin.id}, pid ${twin.pid}): refusing to send from ${deps.hostname}.`,
    [
      'Two machines present the same host id: a cloned server, or the same NEWSLETTER_HOST_ID set on both.',
      'Give each host its own id (unset NEWSLETTER_HOST_ID so that it is detected, or set a distinct value per host);',
      '`newsletter runs` shows which hosts are running.',
    ],
  );
}

/**
 * Build and verify each due newsletter, then compare-and-set scheduled → sending with the body in
 * one transaction. Nothing here sets a flag that a later step trusts: the next step reads the
 * newsletters that are `sending` (with their stored body) back from the database.
 */
async function beginDueNewsletters(
  deps: SendDueDeps,
  render: RenderModule,
  runId: number,
  result: SendDueResult,
) {
  const knownFields = ['email', 'name', 'unsubscribe_url', ...(await deps.store.knownFieldNames())];
  for (const newsletter of await deps.store.dueNewsletters(deps.now())) {
    if (deps.stop.stopped) return;
    failpoint('before-build');
    try {
      const body = await render.buildBody(newsletter, {
        templatesRoot: deps.templatesRoot(newsletter),
        knownFields,
        defaultFrom: deps.config.from,
      });
      failpoint('after-build');
      if (await deps.store.beginSending(newsletter, body, runId, deps.now())) {
        failpoint('after-begin-sending');
        deps.events({ type: 'newsletter-built', newsletterId: newsletter.id, subject: newsletter.subject });
        result.newsletters.push({ id: newsletter.id, subject: newsletter.subject, result: 'began' });
      } else {
        await reportLostBegin(deps, newsletter, result);
      }
    } catch (error) {
      if (!(error instanceof BuildError)) throw error;
      const reason = [error.message, ...error.details].join('\n');
      if (await deps.store.markBuildFailed(newsletter, reason, deps.now())) {
        deps.events({ type: 'newsletter-build-failed', newsletterId: newsletter.id, reason });
        result.newsletters.push({
          id: newsletter.id,
          subject: newsletter.subject,
          result: 'build-failed',
          reason,
        });
      }
    }
  }
}

/**
 * The compare-and-set that begins sending changed nothing: another run began it, or an operator
 * changed it (`schedule --at LATER`, cancel) while its body was being built. The operator wins.
 */
async function reportLostBegin(deps: SendDueDeps, read: Newsletter, result: SendDueResult): Promise<void> {
  const now = (await deps.store.getNewsletter(read.id)) ?? read;
  if (now.status === 'sending' || now.status === 'sent') {
    deps.events({ type: 'newsletter-taken-by-another-run', newsletterId: read.id });
    return;
  }
  deps.events({
    type: 'newsletter-changed-during-build',
    newsletterId: read.id,
    status: now.status,
    scheduledAt: now.scheduledAt,
  });
  result.newsletters.push({ id: read.id, subject: read.subject, result: 'changed-during-build' });
}

interface Budget {
  messages: number | null;
  deadline: Millis | null;
}

/** What sending needs beside the newsletter: the same for every newsletter of the run. */
interface SendContext {
  transport: Transport;
  limiter: RateLimiter;
  lease: LeaseKeeper;
  unsettled: Unsettled;
  runId: number;
}

async function sendNewsletter(
  deps: SendDueDeps,
  render: RenderModule,
  context: SendContext,
  newsletter: Newsletter,
  budget: Budget,
  result: SendDueResult,
): Promise<NewsletterReport> {
  const { lease, runId } = context;
  const { store, config } = deps;
  const body = newsletter.body;
  if (!body) throw new Error(`newsletter ${newsletter.id} is sending without a stored body`);
  const report: NewsletterReport = { id: newsletter.id, subject: newsletter.subject, result: 'continuing' };
  const personalise = render.preparePersonaliser(body, {
    newsletterId: newsletter.id,
    baseUrl: config.baseUrl ?? '',
    secret: config.secret ?? '',
    listNames: newsletter.lists,
    replyTo: config.replyTo,
  });
  const fromDomain = domainOf(body.from);
  let after = 0;
  for (;;) {
    checkBudget(deps, budget);
    if (deps.stop.stopped) return report;
    if (!(await lease.renewIfDue())) return report;
    const limit = budget.messages === null ? config.batchSize : Math.min(config.batchSize, budget.messages);
    // Reserves from the hourly quota first, when one is set; used up → stop 'quota', claim nothing.
    const claim = await claimWithinQuota(deps, {
      newsletterId: newsletter.id,
      runId,
      limit,
      now: deps.now(),
      afterSubscriberId: after,
      makeMessageId: (address) => messageIdFor(newsletter.id, address, fromDomain),
    });
    if (!claim.stillSending) {
      report.result = 'cancelled';
      return report;
    }
    after = claim.lastSubscriberId;
    result.counts.skipped += claim.skipped;
    if (claim.claimed.length === 0 && claim.skipped === 0) {
      if (await store.completeIfDone(newsletter.id, deps.now())) {
        report.result = 'sent';
        deps.events({ type: 'newsletter-sent', newsletterId: newsletter.id });
      }
      return report;
    }
    failpoint('after-claim');
    deps.events({
      type: 'batch-claimed',
      newsletterId: newsletter.id,
      claimed: claim.claimed.length,
      skipped: claim.skipped,
    });
    if (budget.messages !== null) budget.messages -= claim.claimed.length;
    await sendBatch(deps, context, newsletter.id, claim.claimed, personalise, result);
  }
}

function checkBudget(deps: SendDueDeps, budget: Budget): void {
  if (budget.messages !== null && budget.messages <= 0) deps.stop.stop('budget', 'reached --max-messages');
  if (budget.deadline !== null && deps.now() >= budget.deadline)
    deps.stop.stop('budget', 'reached --max-seconds');
}

/**
 * Sends one claimed batch with up to `transport.maxInFlight` messages in flight (three per SMTP
 * connection: the pool pipelines), at the configured rate, then records every outcome in one
 * transaction. A message is handed to the transport only while this run's lease is known to be
 * valid, checked right before the hand-over, after any wait for the rate; once the run must stop,
 * the rest of the batch goes back to `retry` untouched (it was never sent, so it is not `unknown`).
 */
async function sendBatch(
  deps: SendDueDeps,
  context: SendContext,
  newsletterId: number,
  batch: ClaimedDelivery[],
  personalise: Personaliser,
  result: SendDueResult,
): Promise<void> {
  const { transport, limiter, lease, unsettled, runId } = context;
  const writes: OutcomeWrite[] = [];
  const notSent: number[] = [];
  let next = 0;
  // Aborted when a reply stops the run: messages still waiting for a connection come back
  // `withdrawn`, so a server that said "slow down" gets nothing more from this run.
  const serverSaidStop = new AbortController();
  const stopOnReply = (reason: 'fatal' | 'throttled' | 'unreachable', reply: string): void => {
    deps.stop.stop(reason, reply);
    serverSaidStop.abort();
  };

  const worker = async (): Promise<void> => {
    for (;;) {
      const delivery = batch[next];
      if (!delivery) return;
      next += 1;
      if (!deps.stop.stopped) {
        const wait = limiter.reserve(deps.now());
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      }
      failpoint('before-hand-over');
      // Checked after the wait, right before the hand-over: a run stopped or paused past its lease
      // while it waited must not send what another run may already have taken over.
      if (!deps.stop.stopped && !lease.validFor(deps.now()))
        deps.stop.stop('lease-lost', 'the lease ran out before this message could be sent');
      if (deps.stop.stopped) {
        notSent.push(delivery.deliveryId);
        continue;
      }
      unsettled.handedOver.add(delivery.deliveryId);
      const outcome = await sendOne(transport, personalise, delivery, serverSaidStop.signal);
      if (outcome.kind === 'fatal' || outcome.kind === 'withdrawn') {
        // Refused before any message data (authentication, configuration), or withdrawn because
        // another message's reply stopped the run before this one was tried: never handed over.
        if (outcome.kind === 'fatal') stopOnReply('fatal', outcome.reply);
        unsettled.handedOver.delete(delivery.deliveryId);
        notSent.push(delivery.deliveryId);
        continue;
      }
      if (outcome.kind === 'retry' && outcome.throttled) stopOnReply('throttled', outcome.reply);
      if (outcome.kind === 'retry' && outcome.unreachable) stopOnReply('unreachable', outcome.reply);
      writes.push(decideWrite(delivery, outcome, deps.config.retryAfter, deps.now()));
    }
  };
  // The SMTP pool pipelines (three messages per connection); other transports take one each.
  const inFlight = transport.maxInFlight ?? deps.config.connections;
  const workers = Math.max(1, Math.min(inFlight, batch.length));
  await Promise.all(Array.from({ length: workers }, worker));

  failpoint('after-send-before-record');
  // Known from here on: if the write fails for good, endRun writes them.
  unsettled.outcomes = writes;
  const recorded = await deps.store.recordOutcomes(runId, writes, deps.now());
  unsettled.outcomes = [];
  for (const write of writes) unsettled.handedOver.delete(write.deliveryId);
  failpoint('after-record');
  result.refusedWrites += recorded.refused;
  if (recorded.refused > 0)
    deps.stop.stop('lease-lost', `${recorded.refused} outcome writes were refused: another run took over`);
  for (const key of ['sent', 'failed', 'retry', 'unknown', 'skipped'] as const)
    result.counts[key] += recorded.recorded[key];
  if (notSent.length > 0) await deps.store.releaseClaims(runId, notSent, deps.now());
  const { sent, failed, retry, unknown } = recorded.recorded;
  deps.events({
    type: 'outcomes-recorded',
    newsletterId,
    sent,
    failed,
    retry,
    unknown,
    refused: recorded.refused,
  });
}

async function sendOne(
  transport: Transport,
  personalise: Personaliser,
  delivery: ClaimedDelivery,
  signal: AbortSignal,
): Promise<SendOutcome> {
  try {
    return await transport.send(personalise(delivery), { signal });
  } catch (error) {
    // A transport must classify, not throw; if one throws anyway we cannot know how far it got.
    return { kind: 'unknown', reply: `transport error: ${(error as Error).message}` };
  }
}

/**
 * Renews the run's lease in the database, on a timer and between batches. `validFor(now)` is the
 * local view used before handing each message over: a message is only sent while the last renewal
 * that the database accepted still covers it, with a margin.
 */
class LeaseKeeper {
  private validUntil: Millis;
  private lastRenewal: Millis;
  private timer: NodeJS.Timeout | null;
  private lost = false;

  constructor(
    private readonly store: Store,
    private readonly runId: number,
    private readonly deps: SendDueDeps,
    leaseUntil: Millis,
  ) {
    this.validUntil = leaseUntil;
    this.lastRenewal = deps.now();
    const every = Math.max(250, Math.floor(deps.config.leaseMs / 3));
    this.timer = setInterval(() => void this.renew(), every);
    this.timer.unref();
  }

  private get margin(): number {
    return Math.min(5000, Math.floor(this.deps.config.leaseMs / 4));
  }

  /** The end of the lease as the database last accepted it: a run waits for the database until then. */
  get expiresAt(): Millis {
    return this.validUntil;
  }

  validFor(now: Millis): boolean {
    return !this.lost && now < this.validUntil - this.margin;
  }

  async renewIfDue(): Promise<boolean> {
    if (this.lost) return false;
    if (this.deps.now() - this.lastRenewal < this.deps.config.leaseMs / 3)
      return this.validFor(this.deps.now());
    return this.renew();
  }

  async renew(): Promise<boolean> {
    if (this.lost) return false;
    const now = this.deps.now();
    let renewed: boolean;
    try {
      renewed = await this.store.renewLease(this.runId, now, this.deps.config.leaseMs);
    } catch {
      // A busy database: keep the old lease; validFor() stops sending before it runs out.
      return this.validFor(now);
    }
    if (!renewed) {
      this.lost = true;
      this.deps.stop.stop('lease-lost', 'this run was ended by another run after its lease expired');
      return false;
    }
    this.validUntil = now + this.deps.config.leaseMs;
    this.lastRenewal = now;
    return true;
  }

  stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
