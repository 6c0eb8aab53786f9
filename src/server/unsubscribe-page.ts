/**
 * The pages `serve` answers with, and their look. Every page goes through one small HTML template:
 * the built-in one below, or the operator's (NEWSLETTER_UNSUBSCRIBE_PAGE, a file read once when
 * `serve` starts) with these placeholders:
 *
 * | placeholder | becomes                                                                   |
 * | ----------- | ------------------------------------------------------------------------- |
 * | {{title}}   | the page's title ("Unsubscribe", "Unsubscribed", "Link not valid", …)     |
 * | {{text}}    | what happened or what the buttons do, one sentence                        |
 * | {{email}}   | the address the link belongs to (empty on pages that name nobody)         |
 * | {{lists}}   | the lists that newsletter went to, comma-separated (empty when none)      |
 * | {{form}}    | the buttons: one form per choice, posting back to the page's own URL      |
 *
 * Everything put in is HTML-escaped; {{form}} is markup built here from escaped parts. A template
 * without {{form}} is refused when `serve` starts: its confirm page could not unsubscribe anyone.
 * The page may load nothing from elsewhere (the Content-Security-Policy allows inline style and
 * data: images only): a page that fetched a stylesheet would tell a third party who unsubscribed.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../domain/errors.js';

export interface PageContent {
  title: string;
  text: string;
  email?: string;
  lists?: string[];
  /** The choices offered, each a button that posts the one-click body (and `fields`) back. */
  buttons?: { label: string; fields: Record<string, string> }[];
}

export type PageTemplate = (content: PageContent) => string;

const PLACEHOLDERS = ['title', 'text', 'email', 'lists', 'form'] as const;

const BUILT_IN = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{{title}}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}button{font:inherit;padding:.5rem 1.25rem;cursor:pointer;margin:.25rem 0}form{margin:.5rem 0}</style>
</head><body><h1>{{title}}</h1><p>{{text}}</p>{{form}}</body></html>
`;

export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

function formOf(buttons: PageContent['buttons']): string {
  return (buttons ?? [])
    .map((button) => {
      const hidden = Object.entries({ 'List-Unsubscribe': 'One-Click', ...button.fields })
        .map(
          ([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`,
        )
        .join('');
      // No action: the form posts to the page's own URL, correct behind any proxy prefix.
      return `<form method="post">${hidden}<button type="submit">${escapeHtml(button.label)}</button></form>`;
    })
    .join('');
}

/** A renderer for `source`: {{name}} (spaces allowed inside the braces) replaced, nothing else. */
export function compilePageTemplate(source: string): PageTemplate {
  return (content) => {
    const values: Record<(typeof PLACEHOLDERS)[number], string> = {
      title: escapeHtml(content.title),
      text: escapeHtml(content.text),
      email: escapeHtml(content.email ?? ''),
      lists: escapeHtml((content.lists ?? []).join(', ')),
      form: formOf(content.buttons),
    };
    return source.replace(
      /\{\{\s*(title|text|email|lists|form)\s*\}\}/g,
      (_, name: keyof typeof values) => values[name],
    );
  };
}

export const builtInPage: PageTemplate = compilePageTemplate(BUILT_IN);

/** NEWSLETTER_UNSUBSCRIBE_PAGE's template, checked; the built-in page when the variable is unset. */
export function loadPageTemplate(file: string | undefined): PageTemplate {
  if (!file) return builtInPage;
  let source: string;
  try {
    source = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(
      `NEWSLETTER_UNSUBSCRIBE_PAGE: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? String(error)}).`,
      ['Point it at a readable HTML file, or unset it for the built-in page.'],
    );
  }
  if (!/\{\{\s*form\s*\}\}/.test(source)) {
    throw new ConfigError(`NEWSLETTER_UNSUBSCRIBE_PAGE: ${file} has no {{form}}.`, [
      'Put {{form}} where the unsubscribe buttons go; {{title}}, {{text}}, {{email}} and {{lists}} are optional.',
    ]);
  }
  return compilePageTemplate(source);
}
