/**
 * `send-due --dry-run`: the same path as a real run against a read-only view. Every due
 * newsletter (or the one named) is built and verified, every pending recipient's message is
 * personalised and handed to a transport that only counts. Nothing is written, no lock is taken
 * and no SMTP server is needed: CI uses it to prove a newsletter will go out.
 */
import { audienceFieldReport } from '../domain/audience-fields.js';
import { BuildError } from '../domain/errors.js';
import { domainOf, messageIdFor } from '../domain/message-id.js';
import { noSuchNewsletter } from '../domain/not-found.js';
import { describeSegment } from '../domain/segment.js';
import type { Millis, Newsletter, VerifiedBody } from '../domain/types.js';
import { fieldUses } from '../render/field-uses.js';
import type { RenderModule } from './deps.js';
import type { MessageOptions } from './options.js';
import type { Transport } from './ports.js';
import type { SendStore } from './store.js';

export interface DryRunDeps {
  options: MessageOptions;
  store: SendStore;
  now: () => Millis;
  loadRender: () => Promise<RenderModule>;
  counting: () => Promise<Transport>;
  templatesRoot: (newsletter: Newsletter) => string;
  /** Check this newsletter whatever its status or time (a draft, or one scheduled for later). */
  newsletterId: number | null;
  pageSize?: number;
}

export interface DryRunNewsletter {
  id: number;
  subject: string;
  status: Newsletter['status'];
  ok: boolean;
  problems: string[];
  wouldSend: number;
  wouldSkip: number;
  /** Rows already in the ledger as `retry`: they go out again when due. */
  retry: number;
  unknown: number;
  /**
   * Who it goes to: the distinct members of its lists, within its segment (those who would be
   * skipped included, as in `show`'s audience).
   */
  audience: number;
  /** Fields some recipients lack, with the count (src/domain/audience-fields.ts); not failures. */
  warnings: string[];
  /** When it is due (UTC ISO 8601), and the zone it was typed in (null: TZ); null: a draft. */
  scheduledAt: string | null;
  scheduledZone: string | null;
  /** sha256 of the template this dry run compiled: the stored copy a send uses (null: no build). */
  templateSha256: string | null;
}

export interface DryRunResult {
  newsletters: DryRunNewsletter[];
}

/** Used only when the configuration has none: nothing is sent, but links must still be built. */
const PLACEHOLDER_SECRET = 'dry-run-placeholder-secret-not-for-sending';
const PLACEHOLDER_BASE_URL = 'https://newsletter.invalid';

export async function dryRun(deps: DryRunDeps): Promise<DryRunResult> {
  const targets = await chooseNewsletters(deps);
  const result: DryRunResult = { newsletters: [] };
  if (targets.length === 0) return result;
  const render = await deps.loadRender();
  const transport = await deps.counting();
  const knownFields = ['email', 'name', 'unsubscribe_url', ...(await deps.store.knownFieldNames())];
  try {
    for (const newsletter of targets) {
      const counts = await deps.store.counts(newsletter.id);
      const report: DryRunNewsletter = {
        id: newsletter.id,
        subject: newsletter.subject,
        status: newsletter.status,
        ok: true,
        problems: [],
        wouldSend: 0,
        wouldSkip: 0,
        retry: counts.retry,
        unknown: counts.unknown,
        audience: await deps.store.audienceSize(newsletter.lists, newsletter.segment),
        warnings: [],
        scheduledAt: newsletter.scheduledAt === null ? null : new Date(newsletter.scheduledAt).toISOString(),
        scheduledZone: newsletter.scheduledZone,
        templateSha256: null,
      };
      result.newsletters.push(report);
      let body = newsletter.body;
      if (!body || newsletter.status !== 'sending') {
        try {
          body = await render.buildBody(newsletter, {
            templatesRoot: deps.templatesRoot(newsletter),
            knownFields,
            defaultFrom: deps.options.from,
          });
        } catch (error) {
          if (!(error instanceof BuildError)) throw error;
          report.ok = false;
          report.problems.push(error.message, ...error.details);
          continue;
        }
      }
      report.templateSha256 = body.templateHash;
      if (report.audience === 0) {
        report.ok = false;
        report.problems.push(
          newsletter.segment === null
            ? `Its lists (${newsletter.lists.join(', ')}) have no recipients.`
            : `Nobody on its lists (${newsletter.lists.join(', ')}) is in its segment (${describeSegment(newsletter.segment)}).`,
        );
      } else {
        await checkFields(deps.store, newsletter, body, report);
      }
      const personalise = render.preparePersonaliser(body, {
        newsletterId: newsletter.id,
        baseUrl: deps.options.baseUrl ?? PLACEHOLDER_BASE_URL,
        secret: deps.options.secret ?? PLACEHOLDER_SECRET,
        listNames: newsletter.lists,
        replyTo: deps.options.replyTo,
        returnPath: deps.options.returnPath,
      });
      const fromDomain = domainOf(body.from);
      let after = 0;
      for (;;) {
        const page = await deps.store.pendingRecipients(
          newsletter.id,
          newsletter.lists,
          after,
          deps.pageSize ?? 1000,
          newsletter.segment,
        );
        if (page.length === 0) break;
        for (const recipient of page) {
          after = Math.max(after, recipient.subscriberId ?? after);
          if (recipient.skipReason) {
            report.wouldSkip += 1;
            continue;
          }
          // Spelt out, not `{ ...recipient, … }`: a spread of each row kept V8's garbage collector
          // busy and a million-recipient dry run's memory high (docs/benchmarks.md).
          const message = personalise({
            deliveryId: 0,
            newsletterId: recipient.newsletterId,
            subscriberId: recipient.subscriberId,
            email: recipient.email,
            address: recipient.address,
            name: recipient.name,
            fields: recipient.fields,
            attempts: 0,
            messageId: messageIdFor(deps.options.secret, newsletter.id, recipient.address, fromDomain),
          });
          const outcome = await transport.send(message);
          if (outcome.kind === 'sent') report.wouldSend += 1;
          else {
            report.ok = false;
            report.problems.push(`${recipient.address}: ${outcome.reply}`);
          }
        }
      }
    }
  } finally {
    await transport.close();
  }
  return result;
}

/**
 * The body's fields against the audience (src/domain/audience-fields.ts): a field nobody in it
 * has fails the newsletter, one some lack is a warning with the count.
 */
async function checkFields(
  store: SendStore,
  newsletter: Newsletter,
  body: VerifiedBody,
  report: DryRunNewsletter,
): Promise<void> {
  const uses = fieldUses(body);
  if (uses.length === 0) return;
  const gaps = await store.fieldGaps(
    { lists: newsletter.lists, segment: newsletter.segment },
    uses.map((use) => use.field),
  );
  const found = audienceFieldReport(uses, gaps);
  if (found.errors.length > 0) {
    report.ok = false;
    report.problems.push(...found.errors);
  }
  report.warnings.push(...found.warnings);
}

async function chooseNewsletters(deps: DryRunDeps): Promise<Newsletter[]> {
  if (deps.newsletterId !== null) {
    const newsletter = await deps.store.getNewsletter(deps.newsletterId);
    if (!newsletter) throw noSuchNewsletter(deps.newsletterId);
    return [newsletter];
  }
  return [...(await deps.store.dueNewsletters(deps.now())), ...(await deps.store.sendingNewsletters())];
}
