/**
 * The fields a built body uses without a default, for the audience check
 * (src/domain/audience-fields.ts), each with the words around its first use as a reader would see
 * them with the value missing: "Find meet-ups near {{city}}." gives "meet-ups near .". The text
 * part is the readable one, so it is searched first, then the subject; a field only in the HTML
 * (an attribute, say) has no words to show.
 */
import { type FieldUse, NEVER_EMPTY_FIELDS } from '../domain/audience-fields.js';
import { requiredFieldsOf, type SplitTemplate, splitTemplate } from './fields.js';

const WORDS_AROUND = 3;

export function fieldUses(body: { subject: string; html: string; text: string }): FieldUse[] {
  const parts = [splitTemplate(body.text), splitTemplate(body.subject), splitTemplate(body.html)];
  const fields = [...new Set(parts.flatMap((part) => requiredFieldsOf(part)))].filter(
    (field) => !NEVER_EMPTY_FIELDS.includes(field),
  );
  return fields.map((field) => ({ field, reads: readsWithout(parts.slice(0, 2), field) }));
}

/** The words around the first slot of `field` that has no default, the slot left empty. */
function readsWithout(parts: readonly SplitTemplate[], field: string): string | null {
  for (const part of parts) {
    const at = part.fields.findIndex((slot) => slot.name === field && slot.default === undefined);
    if (at === -1) continue;
    const before = lastLine(part.literals[at] ?? '')
      .split(/[ \t]+/)
      .slice(-WORDS_AROUND - 1)
      .join(' ');
    const after = firstLine(part.literals[at + 1] ?? '')
      .split(/[ \t]+/)
      .slice(0, WORDS_AROUND)
      .join(' ');
    const reads = `${before}${after}`.trim();
    return reads === '' ? null : reads;
  }
  return null;
}

function lastLine(text: string): string {
  return text.slice(text.lastIndexOf('\n') + 1);
}

function firstLine(text: string): string {
  const end = text.indexOf('\n');
  return end === -1 ? text : text.slice(0, end);
}
