/**
 * `edit`, `copy` and `delete`: a newsletter's life after `create` (issue 14). Which statuses allow
 * what, and the sentences that refuse: src/domain/newsletter-life.ts; the store checks the status
 * again under its lock, so a run that begins meanwhile wins cleanly.
 *
 * `edit` re-runs every check `create` runs on the newsletter as it would be after the edit (lists,
 * subject, From, the build with its fields), and stores the template source (includes resolved)
 * read now: from then on every build compiles that copy. `copy` makes a new draft from the stored
 * template, subject, From and lists, checked the same way. Each writes an event (events table).
 */
import { InputError, UsageError } from '../../domain/errors.js';
import { headerOptionProblems } from '../../domain/header-options.js';
import { EDITABLE, notDeletable, notEditable } from '../../domain/newsletter-life.js';
import { shortDigest } from '../../domain/stored-template.js';
import type { Newsletter } from '../../domain/types.js';
import type { NewsletterPatch } from '../../store/store.js';
import type { Context } from '../context.js';
import { withStore } from '../context.js';
import { checkAudience, segmentAfterEdit, segmentEdited } from '../audience-check.js';
import { printJson, println, warn } from '../output.js';
import {
  checkBuild,
  checkLists,
  countProblems,
  parseId,
  readTemplateOnce,
  requireNewsletter,
  resolveTemplate,
  summarise,
  withCheckedHtml,
} from './newsletters.js';

/** What `edit` may change; each option left out keeps what is stored. */
export interface EditOptions {
  subject?: string;
  template?: string;
  /** Replaces the newsletter's lists (repeatable). */
  list?: string[];
  from?: string;
  json?: boolean;
  /** A new segment (src/domain/segment.ts), replacing the stored one; `--no-segment` (false) removes it. */
  where?: string[];
  excludeList?: string[];
  segment?: boolean;
}

/** The options of `edit` that change something, by name (what the event and the summary say). */
function editedFields(options: EditOptions): string[] {
  const fields: string[] = (['subject', 'template', 'list', 'from'] as const).filter(
    (name) => options[name] !== undefined,
  );
  return segmentEdited(options) ? [...fields, 'segment'] : fields;
}

export async function editCommand(context: Context, id: string, options: EditOptions): Promise<void> {
  const newsletterId = parseId(id);
  const fields = editedFields(options);
  if (fields.length === 0)
    throw new UsageError(
      'Nothing to edit: give --subject, --template, --list, --from, --where, --exclude-list or --no-segment (see `newsletter edit --help`).',
    );
  if (options.segment === false && (options.where !== undefined || options.excludeList !== undefined))
    throw new UsageError(
      'Give either --no-segment (the whole lists) or --where/--exclude-list (a new segment), not both.',
    );
  const now = Date.now();
  const problems = headerOptionProblems(options);
  const lists = options.list === undefined ? undefined : [...new Set(options.list)];
  if (lists !== undefined && lists.length === 0) problems.push('--list needs a list name.');
  const templatePath =
    options.template === undefined ? null : resolveTemplate(options.template, context.cwd, problems);
  const template = templatePath ? await readTemplateOnce(templatePath, now) : null;

  const edited = await withStore(context, {}, async (store) => {
    const existing = await requireNewsletter(store, newsletterId);
    // Said first and alone: no fix of the options makes a sent newsletter editable.
    if (!EDITABLE.includes(existing.status)) throw new InputError(notEditable(newsletterId, existing.status));
    // An edit stores the From it checks: the newsletter's, or NEWSLETTER_FROM for one created
    // before the From was stored.
    const from = options.from ?? existing.from ?? context.config.from;
    const after = {
      subject: options.subject ?? existing.subject,
      templatePath: templatePath ?? existing.templatePath,
      template: templatePath ? template : existing.template,
      from,
      lists: lists ?? existing.lists,
    };
    await checkLists(store, after.lists, problems);
    const segment = await segmentAfterEdit(store, options, after.lists, existing.segment, problems);
    const rebuild = options.template === undefined || templatePath !== null;
    const body = rebuild ? await checkBuild(context, store, after, problems) : null;
    // The audience as it would be after the edit, as `create` checks it (audience-check.ts).
    const warnings =
      problems.length > 0 ? [] : await checkAudience(store, { lists: after.lists, segment }, body, problems);
    if (problems.length > 0) {
      const count = countProblems(problems);
      throw new InputError(
        `Cannot edit newsletter ${newsletterId}${count === 1 ? ':' : `: ${count} problems.`} Nothing was changed.`,
        problems,
      );
    }
    const patch: NewsletterPatch = {
      subject: options.subject,
      template:
        templatePath && template
          ? { path: templatePath, source: (await withCheckedHtml(template, body)) ?? template }
          : undefined,
      from: from !== existing.from && from !== null ? from : undefined,
      lists,
      segment: segmentEdited(options) ? segment : undefined,
    };
    const result = await store.editNewsletter(newsletterId, patch, now);
    if (!result.ok) throw new InputError(notEditable(newsletterId, result.status));
    for (const warning of warnings) warn(warning);
    await store.recordEvent('edit', { newsletterId, fields }, now);
    return requireNewsletter(store, newsletterId);
  });
  if (options.json) printJson(summarise(edited));
  else println(`Edited newsletter ${newsletterId} (${fields.join(', ')}): ${versionWords(edited)}.`);
}

export async function copyCommand(context: Context, id: string, options: { json?: boolean }): Promise<void> {
  const sourceId = parseId(id);
  const now = Date.now();
  const copy = await withStore(context, {}, async (store) => {
    const source = await requireNewsletter(store, sourceId);
    // One created before templates were stored is read now: a copy always keeps its template.
    const template = source.template ?? (await readTemplateOnce(source.templatePath, now));
    const draft = {
      subject: source.subject,
      templatePath: source.templatePath,
      template,
      from: source.from ?? context.config.from,
      lists: source.lists,
    };
    const problems: string[] = [];
    await checkLists(store, draft.lists, problems);
    const body = await checkBuild(context, store, draft, problems);
    if (problems.length > 0) {
      const count = countProblems(problems);
      throw new InputError(
        `Cannot copy newsletter ${sourceId}${count === 1 ? ':' : `: ${count} problems.`} Nothing was created; \`newsletter create\` makes one from other lists or another template.`,
        problems,
      );
    }
    const created = await store.createNewsletter(
      {
        ...draft,
        template: await withCheckedHtml(draft.template, body),
        scheduledAt: null,
        scheduledZone: null,
        segment: source.segment,
      },
      now,
    );
    await store.recordEvent('copy', { newsletterId: created.id, from: sourceId }, now);
    return created;
  });
  if (options.json) printJson({ ...summarise(copy), copiedFrom: sourceId });
  else println(String(copy.id));
}

export async function deleteCommand(
  context: Context,
  id: string,
  options: { json?: boolean },
): Promise<void> {
  const newsletterId = parseId(id);
  const { deleted, status } = await withStore(context, {}, async (store) => {
    const existing = await requireNewsletter(store, newsletterId);
    const outcome = await store.deleteNewsletter(newsletterId);
    if (!outcome.deleted) throw new InputError(notDeletable(newsletterId, outcome));
    await store.recordEvent(
      'delete',
      { newsletterId, status: existing.status, subject: existing.subject, ledgerRows: outcome.ledgerRows },
      Date.now(),
    );
    return { deleted: outcome, status: existing.status };
  });
  if (options.json) {
    printJson({ id: newsletterId, deleted: true, status, ledgerRows: deleted.ledgerRows });
    return;
  }
  const rows = deleted.ledgerRows;
  println(
    `Deleted newsletter ${newsletterId} (${status})${rows > 0 ? ` and its ${rows} ledger ${rows === 1 ? 'row' : 'rows'}, none of them sent` : ''}.`,
  );
}

function versionWords(n: Newsletter): string {
  return n.template === null
    ? `template read from ${n.templatePath} at each build`
    : `template sha256 ${shortDigest(n.template.sha256)}`;
}
