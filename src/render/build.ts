/**
 * Builds and verifies a newsletter's body (DESIGN, promise 3): compile the MJML, derive the text
 * part, then check everything that could make a broken mail, collecting every problem before
 * throwing one BuildError, so the operator fixes the template once, not once per run.
 *
 * The engine wraps this (to time it or count compiles); nothing here caches.
 */
import { BuildError } from '../domain/errors.js';
import type { VerifiedBody } from '../domain/types.js';
import type { BuildBody, BuildContext } from '../engine/ports.js';
import { BUILT_IN_FIELDS, fieldsOf, requiredFieldsOf, type SplitTemplate, splitTemplate } from './fields.js';
import { compileMjml } from './mjml.js';
import { compileStoredTemplate } from './stored-template.js';
import { htmlToTextPart } from './text.js';

const UNSUBSCRIBE_FIELD = 'unsubscribe_url';
const HEADER_BREAK = /[\r\n\0\u2028\u2029]/;

export const buildBody: BuildBody = async (newsletter, context) => {
  const problems: string[] = [];

  const from = newsletter.from ?? context.defaultFrom;
  if (from === null || from.trim() === '') {
    problems.push('no From address: pass --from to create, or set NEWSLETTER_FROM');
  } else if (HEADER_BREAK.test(from)) {
    problems.push('the From address contains a line break or NUL');
  }
  if (newsletter.subject.trim() === '') problems.push('the subject is empty');
  if (HEADER_BREAK.test(newsletter.subject)) problems.push('the subject contains a line break or NUL');

  let compiled: { html: string; templateHash: string } | null = null;
  try {
    // The stored copy when there is one (create and edit keep it): what was previewed and
    // tested is what is sent. A newsletter from before templates were stored reads its file.
    compiled = newsletter.template
      ? await compileStoredTemplate(newsletter.template)
      : await compileMjml(newsletter.templatePath, context.templatesRoot);
  } catch (error) {
    if (!(error instanceof BuildError)) throw error;
    // Each detail already names its file and line; the wrapper's message would only repeat it.
    problems.push(...(error.details.length > 0 ? error.details : [error.message]));
  }

  const parts: Part[] = [{ label: 'subject', split: splitTemplate(newsletter.subject) }];
  let text = '';
  if (compiled !== null) {
    text = htmlToTextPart(compiled.html);
    const html = splitTemplate(compiled.html);
    if (compiled.html.trim() === '') problems.push('the HTML part is empty');
    // An image-only template yields a text part that is just a link placeholder: empty to a reader.
    if (splitTemplate(text).literals.join('').trim() === '') {
      problems.push('the text part is empty: the template has no text, only images or links');
    }
    if (!fieldsOf(html).includes(UNSUBSCRIBE_FIELD)) {
      problems.push(
        `no unsubscribe link: the HTML must contain {{${UNSUBSCRIBE_FIELD}}} (templates/partials/footer.mjml has one)`,
      );
    }
    // html-to-text keeps the footer's link, so this only fires for a link it could not render.
    if (!fieldsOf(splitTemplate(text)).includes(UNSUBSCRIBE_FIELD)) {
      text = `${text}\n\nUnsubscribe: {{${UNSUBSCRIBE_FIELD}}}`;
    }
    parts.push({ label: 'HTML', split: html }, { label: 'text', split: splitTemplate(text) });
  }
  problems.push(...fieldProblems(parts, context));

  if (problems.length > 0 || compiled === null || from === null) {
    throw new BuildError(
      // id 0 is a check before the newsletter exists (`create` verifies its template up front).
      `${newsletter.id > 0 ? `newsletter ${newsletter.id}` : 'the newsletter'} cannot be built from ${newsletter.templatePath}`,
      problems,
    );
  }
  const body: VerifiedBody = {
    subject: newsletter.subject,
    html: compiled.html,
    text,
    from,
    fields: [...new Set(parts.flatMap((part) => fieldsOf(part.split)))].sort(),
    templateHash: compiled.templateHash,
    compiledAt: Date.now(),
  };
  return body;
};

interface Part {
  label: string;
  split: SplitTemplate;
}

/**
 * An unknown field is a build error, not an empty string (DESIGN, "The body"): a typo in a
 * template must not send "Dear ," to everyone. One problem per field, saying where it is.
 */
function fieldProblems(parts: readonly Part[], context: BuildContext): string[] {
  const known = new Set<string>([...BUILT_IN_FIELDS, ...context.knownFields]);
  const knownList = [...known].sort().join(', ');
  const unknown = new Map<string, string[]>();
  const problems: string[] = [];
  for (const part of parts) {
    // A field with a default everywhere it is used may be unknown: it always takes its default.
    for (const name of requiredFieldsOf(part.split)) {
      if (!known.has(name)) unknown.set(name, [...(unknown.get(name) ?? []), part.label]);
    }
    for (const placeholder of new Set(part.split.malformed)) {
      problems.push(`malformed placeholder ${placeholder} in the ${part.label}: write {{field_name}}`);
    }
  }
  for (const [name, where] of unknown) {
    problems.push(`unknown field {{${name}}} in the ${where.join(' and ')}; known fields: ${knownList}`);
  }
  return problems;
}
