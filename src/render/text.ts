/**
 * The text/plain part, derived from the compiled HTML once per newsletter. It still holds the
 * `{{field}}` placeholders; personalise.ts fills them per recipient like the HTML's.
 */
import { compile } from 'html-to-text';

const WRAP_AT = 78;

// Compiled once: html-to-text builds a selector decision tree per options object.
let converter: ((html: string) => string) | undefined;

function getConverter(): (html: string) => string {
  converter ??= compile({
    wordwrap: WRAP_AT,
    // A placeholder longer than the line stays whole: splitting it would make it unknown text.
    longWordSplit: { forceWrapOnLimit: false },
    selectors: [
      // Headings shouted in capitals read as anger in a text mail.
      ...['h1', 'h2', 'h3', 'h4', 'h5', 'h6'].map((selector) => ({
        selector,
        options: { uppercase: false },
      })),
      { selector: 'table', options: { uppercaseHeaderCells: false } },
      // `Read more <https://…>`; a link whose text is its URL is shown once.
      {
        selector: 'a',
        options: { linkBrackets: ['<', '>'] as [string, string], hideLinkHrefIfSameAsText: true },
      },
      { selector: 'img', format: 'skip' },
      // mj-preview's hidden inbox-preview text is not part of the message.
      { selector: 'div[style*="display:none"]', format: 'skip' },
    ],
  });
  return converter;
}

// `{{ name }}` holds spaces the word wrapper may break at; `{{name}}` is one unbreakable word.
const SPACED_PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

export function htmlToTextPart(html: string): string {
  return getConverter()(html.replace(SPACED_PLACEHOLDER, '{{$1}}')).trim();
}
