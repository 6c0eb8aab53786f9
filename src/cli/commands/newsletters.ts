import { existsSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { BuildError, InputError, UsageError } from '../../domain/errors.js';
import { fromAddressProblem } from '../../domain/from-address.js';
import { noSuchNewsletter } from '../../domain/not-found.js';
import type { Delivery, DeliveryCounts, Newsletter, NewsletterStatus } from '../../domain/types.js';
import { parseWhen } from '../../domain/when.js';
import type { Store } from '../../store/store.js';
import type { Context } from '../context.js';
import { templatesRootOf, withStore } from '../context.js';
import { printJson, println, table, time, warn } from '../output.js';
import { missingTemplateHints } from '../template-hints.js';

const HEADER_BREAK = /[\r\n\0\u2028\u2029]/;

interface CreateOptions {
  subject: string;
  template: string;
  list?: string[];
  from?: string;
  at?: string;
  now?: boolean;
  json?: boolean;
}

/** `--at` in the past would go out at the next cron minute: refused, naming the time (exit 4). */
function pastTimeProblem(value: string, at: number, now: number): string | null {
  if (at >= now) return null;
  return `--at "${value}" is ${time(at)}, which is in the past; use --now to send at once, or a time in the future.`;
}

/**
 * Everything that would make the newsletter fail later is checked now, with every problem
 * reported at once: the template compiles and verifies, the lists exist and have recipients.
 */
export async function createCommand(context: Context, options: CreateOptions): Promise<void> {
  const problems: string[] = [];
  const now = Date.now();
  if (HEADER_BREAK.test(options.subject))
    problems.push('--subject contains a line break; a subject is one line.');
  if (!options.subject.trim()) problems.push('--subject is empty.');
  if (options.from !== undefined && HEADER_BREAK.test(options.from))
    problems.push('--from contains a line break.');
  else if (options.from !== undefined) {
    const problem = fromAddressProblem('--from', options.from);
    if (problem) problems.push(problem);
  }
  if (options.at !== undefined && options.now)
    throw new UsageError('Give at most one of --at WHEN or --now.');
  const scheduledAt = options.now ? now : options.at === undefined ? null : parseWhen(options.at, now);
  if (options.at !== undefined && scheduledAt === null) {
    problems.push(
      `--at "${options.at}" is not a time; use e.g. "2026-12-01 09:00", "2026-12-01T09:00Z", "now" or "+2h".`,
    );
  } else if (options.at !== undefined && scheduledAt !== null) {
    const past = pastTimeProblem(options.at, scheduledAt, now);
    if (past) problems.push(past);
  }
  const lists = [...new Set(options.list ?? [])];
  if (lists.length === 0) problems.push('No --list given: a newsletter needs at least one list to go to.');
  const templatePath = resolveTemplate(options.template, context.cwd, problems);

  const newsletter = await withStore(context, {}, async (store) => {
    await checkLists(store, lists, problems);
    if (templatePath)
      await checkBuild(
        context,
        store,
        { subject: options.subject, templatePath, from: options.from ?? null, lists },
        problems,
      );
    if (problems.length > 0) {
      throw new InputError(
        countProblems(problems) === 1
          ? 'Cannot create the newsletter:'
          : `Cannot create the newsletter: ${countProblems(problems)} problems.`,
        problems,
      );
    }
    return store.createNewsletter(
      {
        subject: options.subject,
        templatePath: templatePath as string,
        from: options.from ?? null,
        lists,
        scheduledAt,
      },
      now,
    );
  });
  if (options.json) printJson(summarise(newsletter));
  else println(String(newsletter.id));
}

export async function scheduleCommand(
  context: Context,
  id: string,
  options: { at?: string; now?: boolean; json?: boolean },
) {
  const newsletterId = parseId(id);
  if ((options.at === undefined) === !options.now)
    throw new UsageError('Give exactly one of --at WHEN or --now.');
  const now = Date.now();
  const at = options.now ? now : parseWhen(options.at as string, now);
  if (at === null)
    throw new InputError(`--at "${options.at}" is not a time; use e.g. "2026-12-01 09:00", "now" or "+2h".`);
  const past = options.now ? null : pastTimeProblem(options.at as string, at, now);
  if (past) throw new InputError(`Cannot schedule newsletter ${newsletterId}: ${past}`);
  const newsletter = await withStore(context, {}, async (store) => {
    const existing = await requireNewsletter(store, newsletterId);
    const problems: string[] = [];
    await checkLists(store, existing.lists, problems);
    await checkBuild(context, store, existing, problems);
    if (problems.length > 0) throw new InputError(`Cannot schedule newsletter ${newsletterId}.`, problems);
    const result = await store.scheduleNewsletter(newsletterId, at, now);
    if (!result.ok) {
      throw new InputError(
        `Newsletter ${newsletterId} ${statusInWords(result.status)}; only a draft or a scheduled newsletter can be scheduled.`,
      );
    }
    return requireNewsletter(store, newsletterId);
  });
  if (options.json) printJson(summarise(newsletter));
  else println(`Newsletter ${newsletterId} is scheduled for ${time(at)}.`);
}

export async function cancelCommand(context: Context, id: string): Promise<void> {
  const newsletterId = parseId(id);
  const counts = await withStore(context, {}, async (store) => {
    const result = await store.cancelNewsletter(newsletterId, Date.now());
    if (!result.ok)
      throw new InputError(
        `Newsletter ${newsletterId} ${statusInWords(result.status)}; it can no longer be cancelled.`,
      );
    await store.recordEvent('cancel', { newsletterId }, Date.now());
    return store.counts(newsletterId);
  });
  println(
    `Cancelled newsletter ${newsletterId}: ${counts.sent} sent, ${counts.pending} never claimed (recorded as pending).`,
  );
}

export async function listCommand(context: Context, options: { json?: boolean }): Promise<void> {
  const rows = await withStore(context, { readonly: true }, async (store) => {
    const newsletters = await store.listNewsletters();
    return Promise.all(newsletters.map(async (n) => ({ ...summarise(n), counts: await store.counts(n.id) })));
  });
  if (options.json) {
    printJson(rows);
    return;
  }
  println(
    table(
      ['id', 'status', 'scheduled', 'subject', 'lists', 'sent', 'failed', 'unknown', 'pending'],
      rows.map((n) => [
        n.id,
        n.status,
        n.scheduledAt ?? '-',
        n.subject,
        n.lists.join(','),
        n.counts.sent,
        n.counts.failed,
        n.counts.unknown,
        n.counts.pending,
      ]),
    ),
  );
}

export async function showCommand(context: Context, id: string, options: { json?: boolean }): Promise<void> {
  const newsletterId = parseId(id);
  const shown = await withStore(context, { readonly: true }, async (store) => {
    const newsletter = await requireNewsletter(store, newsletterId);
    const counts = await store.counts(newsletterId);
    // `claimed` too: rows of a run that ended without recording them (stranded) need their
    // Message-IDs looked up before `reconcile`, as unknown ones do.
    const attention = [
      ...(await store.deliveries(newsletterId, { state: 'unknown', limit: 50 })),
      ...(await store.deliveries(newsletterId, { state: 'claimed', limit: 50 })),
      ...(await store.deliveries(newsletterId, { state: 'failed', limit: 50 })),
    ];
    // Failed and suppressed (a 5.1.x reply): list hygiene, said as such, not an alarm.
    const hardBounces =
      counts.failed === 0 ? { count: 0, addresses: [] } : await store.hardBounces(newsletterId, 50);
    return { newsletter, counts, attention, hardBounces };
  });
  const { newsletter, counts, attention, hardBounces } = shown;
  const suppressed = new Set(hardBounces.addresses);
  const isHardBounce = (d: Delivery) => d.state === 'failed' && suppressed.has(d.address);
  if (options.json) {
    printJson({
      ...summarise(newsletter),
      counts: pickCounts(counts),
      hardBounces: hardBounces.count,
      attention: attention.map((d) => ({
        address: d.address,
        state: d.state,
        reply: d.smtpReply,
        messageId: d.messageId,
        suppressed: isHardBounce(d),
      })),
    });
    return;
  }
  println(`Newsletter ${newsletter.id}: ${newsletter.subject}`);
  println(
    `  status     ${newsletter.status}${newsletter.failureReason ? ` (${newsletter.failureReason.split('\n')[0]})` : ''}`,
  );
  println(`  template   ${newsletter.templatePath}`);
  println(`  lists      ${newsletter.lists.join(', ')}`);
  println(
    `  scheduled  ${time(newsletter.scheduledAt)}   started ${time(newsletter.startedAt)}   finished ${time(newsletter.finishedAt)}`,
  );
  println(
    `  audience   ${counts.audience}: ${counts.sent} sent, ${counts.failed} failed, ${counts.skipped} skipped, ` +
      `${counts.unknown} unknown, ${counts.retry} retry, ${counts.claimed} claimed, ${counts.pending} pending`,
  );
  if (newsletter.failureReason)
    for (const line of newsletter.failureReason.split('\n').slice(1)) println(`    ${line}`);
  // The counts above were kept by `prune`; the rows behind them (and their details) are gone.
  if (newsletter.prunedAt !== null)
    println(`  pruned     ${time(newsletter.prunedAt)}: ledger rows deleted, counts kept`);
  for (const d of attention) println(attentionLine(d, isHardBounce(d)));
  if (hardBounces.count > 0)
    println(
      `  ${hardBounces.count === 1 ? '1 failed address is a hard bounce' : `${hardBounces.count} failed addresses are hard bounces`} (5.1.x, no such user), now suppressed: later newsletters skip ${hardBounces.count === 1 ? 'it' : 'them'}; nothing to do.`,
    );
  if (counts.unknown > 0) {
    warn(
      `${counts.unknown} deliveries are unknown: check the SMTP server's logs for their Message-IDs, then ` +
        `\`newsletter reconcile ${newsletter.id} --mark-sent EMAIL…\` or \`--resend\`.`,
    );
  }
}

/**
 * One delivery that `show` lists. Unknown and claimed ones carry their Message-ID: the operator
 * looks it up in the mail server's log before `reconcile` (README, "The process is killed").
 */
function attentionLine(d: Delivery, hardBounce: boolean): string {
  const messageId = d.state === 'unknown' || d.state === 'claimed' ? `  Message-ID ${d.messageId}` : '';
  const note = hardBounce ? '  (hard bounce: suppressed)' : '';
  return `  ${d.state.padEnd(8)} ${d.address}${messageId}  ${d.smtpReply ?? ''}${note}`.trimEnd();
}

export function summarise(n: Newsletter) {
  return {
    id: n.id,
    status: n.status,
    subject: n.subject,
    template: n.templatePath,
    from: n.from,
    lists: n.lists,
    scheduledAt: n.scheduledAt === null ? null : new Date(n.scheduledAt).toISOString(),
    startedAt: n.startedAt === null ? null : new Date(n.startedAt).toISOString(),
    finishedAt: n.finishedAt === null ? null : new Date(n.finishedAt).toISOString(),
    failureReason: n.failureReason,
    prunedAt: n.prunedAt === null ? null : new Date(n.prunedAt).toISOString(),
  };
}

export function pickCounts(c: DeliveryCounts) {
  return {
    audience: c.audience,
    sent: c.sent,
    failed: c.failed,
    skipped: c.skipped,
    unknown: c.unknown,
    retry: c.retry,
    claimed: c.claimed,
    pending: c.pending,
  };
}

export function parseId(id: string): number {
  const n = Number(id);
  if (!Number.isInteger(n) || n <= 0)
    throw new UsageError(`"${id}" is not a newsletter id; ids are whole numbers (see \`newsletter list\`).`);
  return n;
}

export async function requireNewsletter(store: Store, id: number): Promise<Newsletter> {
  const newsletter = await store.getNewsletter(id);
  if (!newsletter) throw noSuchNewsletter(id);
  return newsletter;
}

function resolveTemplate(template: string, cwd: string, problems: string[]): string | null {
  const absolute = path.resolve(cwd, template);
  if (!existsSync(absolute) || !statSync(absolute).isFile()) {
    problems.push(`--template ${template}: no such file.`, ...missingTemplateHints(template));
    return null;
  }
  return realpathSync(absolute);
}

async function checkLists(store: Store, lists: string[], problems: string[]): Promise<void> {
  const known = new Map((await store.lists()).map((l) => [l.name, l.members]));
  for (const list of lists) {
    if (!known.has(list))
      problems.push(
        `There is no list "${list}"; lists: ${[...known.keys()].join(', ') || '(none yet: import recipients with --list)'}.`,
      );
    else if (known.get(list) === 0) problems.push(`List "${list}" has no recipients.`);
  }
}

async function checkBuild(
  context: Context,
  store: Store,
  newsletter: Pick<Newsletter, 'subject' | 'templatePath' | 'from' | 'lists'>,
  problems: string[],
): Promise<void> {
  const { buildBody } = await import('../../render/build.js');
  const knownFields = ['email', 'name', 'unsubscribe_url', ...(await store.knownFieldNames())];
  try {
    await buildBody(
      {
        ...newsletter,
        id: 0,
        status: 'draft',
        scheduledAt: null,
        failureReason: null,
        body: null,
        createdAt: 0,
        startedAt: null,
        finishedAt: null,
        startedByRun: null,
        prunedAt: null,
        updatedAt: 0,
      },
      {
        templatesRoot: templatesRootOf(newsletter.templatePath),
        knownFields,
        defaultFrom: context.config.from,
      },
    );
  } catch (error) {
    if (!(error instanceof BuildError)) throw error;
    problems.push(error.message, ...error.details.map((d) => `  ${d}`));
  }
}

/** A status as a sentence says it: "newsletter 3 failed to build", never "is failed". */
function statusInWords(status: NewsletterStatus): string {
  switch (status) {
    case 'draft':
      return 'is a draft';
    case 'failed':
      return 'failed to build';
    case 'sent':
      return 'was sent already';
    default:
      return `is ${status}`;
  }
}

/** Indented lines are details of the problem above them, not problems of their own. */
function countProblems(problems: string[]): number {
  return problems.filter((line) => !line.startsWith('  ')).length;
}
