import { existsSync, realpathSync, statSync } from 'node:fs';
import { NO_REPORTS } from '../../store/report-store.js';
import path from 'node:path';
import { BuildError, InputError, UsageError } from '../../domain/errors.js';
import { headerOptionProblems } from '../../domain/header-options.js';
import { noSuchNewsletter } from '../../domain/not-found.js';
import type { Delivery, DeliveryCounts, Newsletter, VerifiedBody } from '../../domain/types.js';
import { notSchedulable, statusInWords } from '../../domain/newsletter-life.js';
import { type StoredTemplate, shortDigest } from '../../domain/stored-template.js';
import { parseWhenWithZone } from '../../domain/when.js';
import { formatInZone } from '../../domain/zone.js';
import type { Store } from '../../store/store.js';
import type { Context } from '../context.js';
import { templatesRootOf, withStore } from '../context.js';
import { checkAudience, segmentOf } from '../audience-check.js';
import { describeSegment } from '../../domain/segment.js';
import { printJson, println, table, warn } from '../output.js';
import { missingTemplateHints } from '../template-hints.js';

interface CreateOptions {
  subject: string;
  template: string;
  list?: string[];
  from?: string;
  at?: string;
  now?: boolean;
  json?: boolean;
  /** The segment (src/domain/segment.ts): `--where FIELD=VALUE|FIELD!=VALUE`, `--exclude-list L`. */
  where?: string[];
  excludeList?: string[];
}

/** `--at` in the past would go out at the next cron minute: refused, naming the time (exit 4). */
export function pastTimeProblem(
  value: string,
  at: number,
  now: number,
  zone: string | null = null,
): string | null {
  if (at >= now) return null;
  return `--at "${value}" is ${formatInZone(at, zone)}, which is in the past; use --now to send at once, or a time in the future.`;
}

/**
 * Everything that would make the newsletter fail later is checked now, with every problem
 * reported at once: the template compiles and verifies, the lists exist and have recipients.
 */
export async function createCommand(context: Context, options: CreateOptions): Promise<void> {
  const problems = headerOptionProblems(options);
  const now = Date.now();
  if (options.at !== undefined && options.now)
    throw new UsageError('Give at most one of --at WHEN or --now.');
  const when = options.now
    ? { at: now, zone: null }
    : options.at === undefined
      ? null
      : parseWhenWithZone(options.at, now);
  const scheduledAt = when?.at ?? null;
  if (options.at !== undefined && scheduledAt === null) {
    problems.push(notATime(options.at));
  } else if (options.at !== undefined && scheduledAt !== null) {
    const past = pastTimeProblem(options.at, scheduledAt, now, when?.zone ?? null);
    if (past) problems.push(past);
  }
  const lists = [...new Set(options.list ?? [])];
  if (lists.length === 0) problems.push('No --list given: a newsletter needs at least one list to go to.');
  const templatePath = resolveTemplate(options.template, context.cwd, problems);
  // The template and its includes are read once, here; every later build compiles this copy.
  const template = templatePath ? await readTemplateOnce(templatePath, now) : null;
  // The From is kept too: a send uses the one tested now, not whatever cron's environment says.
  const from = options.from ?? context.config.from;

  const newsletter = await withStore(context, {}, async (store) => {
    await checkLists(store, lists, problems);
    const segment = await segmentOf(store, options, lists, problems);
    const draft = { subject: options.subject, from, lists, template };
    const body = templatePath ? await checkBuild(context, store, { ...draft, templatePath }, problems) : null;
    // The audience check needs a body and lists that exist: only once everything else is right.
    const warnings =
      problems.length > 0 ? [] : await checkAudience(store, { lists, segment }, body, problems);
    if (problems.length > 0) {
      throw new InputError(
        countProblems(problems) === 1
          ? 'Cannot create the newsletter:'
          : `Cannot create the newsletter: ${countProblems(problems)} problems.`,
        problems,
      );
    }
    const created = await store.createNewsletter(
      {
        subject: options.subject,
        templatePath: templatePath as string,
        from,
        lists,
        scheduledAt,
        template: await withCheckedHtml(template, body),
        scheduledZone: when?.zone ?? null,
        segment,
      },
      now,
    );
    for (const warning of warnings) warn(warning);
    return created;
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
  const when = options.now ? { at: now, zone: null } : parseWhenWithZone(options.at as string, now);
  if (when === null) throw new InputError(notATime(options.at as string));
  const at = when.at;
  const past = options.now ? null : pastTimeProblem(options.at as string, at, now, when.zone);
  if (past) throw new InputError(`Cannot schedule newsletter ${newsletterId}: ${past}`);
  const newsletter = await withStore(context, {}, async (store) => {
    const existing = await requireNewsletter(store, newsletterId);
    const problems: string[] = [];
    await checkLists(store, existing.lists, problems);
    const body = await checkBuild(context, store, existing, problems);
    // Its audience may have changed since `create`: the same check again (audience-check.ts).
    const audience = { lists: existing.lists, segment: existing.segment };
    const warnings = problems.length > 0 ? [] : await checkAudience(store, audience, body, problems);
    if (problems.length > 0) throw new InputError(`Cannot schedule newsletter ${newsletterId}.`, problems);
    for (const warning of warnings) warn(warning);
    // A failed newsletter is checked above with its stored template (fixed by `edit --template`).
    const result = await store.scheduleNewsletter(newsletterId, at, now, when.zone);
    if (!result.ok) throw new InputError(notSchedulable(newsletterId, result.status));
    return requireNewsletter(store, newsletterId);
  });
  if (options.json) printJson(summarise(newsletter));
  else println(`Newsletter ${newsletterId} is scheduled for ${formatInZone(at, when.zone)}.`);
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
        n.scheduledAt === null ? '-' : formatInZone(Date.parse(n.scheduledAt), n.scheduledZone),
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
    // Authenticated bounces and complaints (`bounces receive|import|fetch`, issue 18).
    const reports = (await store.reportCounts([newsletterId])).get(newsletterId) ?? NO_REPORTS;
    return { newsletter, counts, attention, hardBounces, reports };
  });
  const { newsletter, counts, attention, hardBounces, reports } = shown;
  const suppressed = new Set(hardBounces.addresses);
  const isHardBounce = (d: Delivery) => d.state === 'failed' && suppressed.has(d.address);
  if (options.json) {
    printJson({
      ...summarise(newsletter),
      counts: pickCounts(counts),
      hardBounces: hardBounces.count,
      bounced: reports.bounced,
      complained: reports.complained,
      reports,
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
  println(`  template   ${templateLine(newsletter)}`);
  println(
    `  from       ${newsletter.from ?? '(NEWSLETTER_FROM at send time: created before the From was stored)'}`,
  );
  println(`  lists      ${newsletter.lists.join(', ')}`);
  if (newsletter.segment !== null) println(`  segment    ${describeSegment(newsletter.segment)}`);
  println(
    `  scheduled  ${zoned(newsletter.scheduledAt, newsletter.scheduledZone)}   started ${zoned(newsletter.startedAt)}   finished ${zoned(newsletter.finishedAt)}`,
  );
  println(
    `  audience   ${counts.audience}: ${counts.sent} sent, ${counts.failed} failed, ${counts.skipped} skipped, ` +
      `${counts.unknown} unknown, ${counts.retry} retry, ${counts.claimed} claimed, ${counts.pending} pending`,
  );
  if (newsletter.failureReason)
    for (const line of newsletter.failureReason.split('\n').slice(1)) println(`    ${line}`);
  println(
    `  reports    ${reports.bounced} bounced (${reports.hard} hard, ${reports.soft} soft), ${reports.complained} complained`,
  );
  // The counts above were kept by `prune`; the rows behind them (and their details) are gone.
  if (newsletter.prunedAt !== null)
    println(`  pruned     ${zoned(newsletter.prunedAt)}: ledger rows deleted, counts kept`);
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

/** A time in `zone` (null: TZ) with its offset, or "-" (src/domain/zone.ts). */
function zoned(ms: number | null, zone: string | null = null): string {
  return ms === null ? '-' : formatInZone(ms, zone);
}

/**
 * Which template a build compiles: the stored copy (its short sha256, when it was stored, how many
 * files), or, for a newsletter created before templates were stored, the file read at each build.
 */
export function templateLine(n: Newsletter): string {
  if (n.template === null)
    return `${n.templatePath} (read from the file at each build: created before templates were stored; \`newsletter edit ${n.id} --template FILE\` stores it)`;
  const files = n.template.files.length;
  return `${n.templatePath}, stored ${formatInZone(n.template.storedAt, null)}, sha256 ${shortDigest(n.template.sha256)}${files > 1 ? ` (${files} files with its includes)` : ''}`;
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
    /** The part of the lists it goes to (src/domain/segment.ts); null: the whole lists. */
    segment: n.segment,
    scheduledAt: n.scheduledAt === null ? null : new Date(n.scheduledAt).toISOString(),
    /** The zone the time was typed in (IANA name or offset); null: TZ. Times above stay UTC ISO 8601. */
    scheduledZone: n.scheduledZone,
    /** Which version of the template every build compiles (null: read from `template` at build). */
    templateVersion:
      n.template === null
        ? null
        : {
            sha256: n.template.sha256,
            storedAt: new Date(n.template.storedAt).toISOString(),
            files: n.template.files.map((f) => f.path),
          },
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

export function resolveTemplate(template: string, cwd: string, problems: string[]): string | null {
  const absolute = path.resolve(cwd, template);
  if (!existsSync(absolute) || !statSync(absolute).isFile()) {
    problems.push(`--template ${template}: no such file.`, ...missingTemplateHints(template));
    return null;
  }
  return realpathSync(absolute);
}

export async function checkLists(store: Store, lists: string[], problems: string[]): Promise<void> {
  const known = new Map((await store.lists()).map((l) => [l.name, l.members]));
  for (const list of lists) {
    if (!known.has(list))
      problems.push(
        `There is no list "${list}"; lists: ${[...known.keys()].join(', ') || '(none yet: import recipients with --list)'}.`,
      );
    else if (known.get(list) === 0) problems.push(`List "${list}" has no recipients.`);
  }
}

export async function checkBuild(
  context: Context,
  store: Store,
  newsletter: Pick<Newsletter, 'subject' | 'templatePath' | 'from' | 'lists' | 'template'>,
  problems: string[],
): Promise<VerifiedBody | null> {
  const { buildBody } = await import('../../render/build.js');
  const knownFields = ['email', 'name', 'unsubscribe_url', ...(await store.knownFieldNames())];
  try {
    return await buildBody(
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
        scheduledZone: null,
        segment: null,
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
    return null;
  }
}

/** Indented lines are details of the problem above them, not problems of their own. */
export function countProblems(problems: string[]): number {
  return problems.filter((line) => !line.startsWith('  ')).length;
}

/** `--at` that is not a time: the forms it takes, the zone form included. */
export function notATime(value: string): string {
  return `--at "${value}" is not a time; use e.g. "2026-12-01 09:00", "2026-12-24 09:00 Europe/Paris", "2026-12-01T09:00+01:00", "now" or "+2h".`;
}

/**
 * The template with the HTML checkBuild compiled it to, kept beside it so that the run which
 * sends it need not load MJML again (src/render/compiled-template.ts).
 */
export async function withCheckedHtml(
  template: StoredTemplate | null,
  body: VerifiedBody | null,
): Promise<StoredTemplate | null> {
  if (template === null) return null;
  const { withCompiledHtml } = await import('../../render/compiled-template.js');
  return withCompiledHtml(template, body);
}

/**
 * The template and its includes as they are now (src/render/stored-template.ts), or null when
 * they cannot be read: checkBuild then reads the file itself and reports why, once.
 */
export async function readTemplateOnce(templatePath: string, now: number): Promise<StoredTemplate | null> {
  const { snapshotTemplate } = await import('../../render/stored-template.js');
  return (await snapshotTemplate(templatePath, templatesRootOf(templatePath), now)).template;
}
