/**
 * The audience check (issue 14): the fields a newsletter uses without a default, against the
 * people it goes to (its lists minus excluded lists, within its segment, and only those who would
 * be mailed: active and not suppressed), not against every field some import once had.
 *
 * - A field that no recipient of the audience has (absent or empty for all): an error. Everyone
 *   would read the sentence with a hole in it; `create` refuses (exit 4) and the dry run reports
 *   the newsletter as failing.
 * - A field that is empty or absent for some: a warning with the count and what they would read.
 * - A field with a default (`{{city | default: "your area"}}`) is never checked: it is never empty.
 *
 * `email` and `unsubscribe_url` are never empty, so they are not asked about. `name` is, since a
 * list imported without names greets everyone with "Hello ,"; but every subscriber has the column
 * (a CSV without one gives ''), so a `name` empty for all is a warning, never a refusal.
 */

/** Fields every recipient has a value for, whatever was imported. */
export const NEVER_EMPTY_FIELDS: readonly string[] = ['email', 'unsubscribe_url'];

/** Built-in fields every subscriber has, possibly empty: warned about, never refused. */
export const WARN_ONLY_FIELDS: readonly string[] = ['name'];

/** A field the body uses somewhere without a default, and what a reader sees when it is empty. */
export interface FieldUse {
  field: string;
  /** The words around its first use with the value left out ("meet-ups near ."), or null. */
  reads: string | null;
}

/** The store's answer: how many would be mailed, and per field how many of them lack it. */
export interface FieldGaps {
  recipients: number;
  empty: { field: string; count: number }[];
}

export interface AudienceFieldReport {
  errors: string[];
  warnings: string[];
}

export function audienceFieldReport(uses: readonly FieldUse[], gaps: FieldGaps): AudienceFieldReport {
  const report: AudienceFieldReport = { errors: [], warnings: [] };
  // No one to mail: the caller says so in its own words ("its lists have no recipients").
  if (gaps.recipients === 0) return report;
  const total = gaps.recipients;
  for (const use of uses) {
    const count = gaps.empty.find((gap) => gap.field === use.field)?.count ?? 0;
    if (count === 0) continue;
    const reads = use.reads === null ? '' : `: they would read ${JSON.stringify(use.reads)}`;
    const fix = `add a default: {{${use.field} | default: "…"}}`;
    if (count >= total && !WARN_ONLY_FIELDS.includes(use.field)) {
      report.errors.push(
        `{{${use.field}}} is empty for ${total === 1 ? 'the one recipient' : `all ${total} recipients`} of this audience${reads}; ` +
          `${fix}, or send to an audience that has it.`,
      );
    } else {
      const some =
        count >= total
          ? total === 1
            ? 'the one recipient'
            : `all ${total} recipients`
          : `${count} of ${total} ${total === 1 ? 'recipient' : 'recipients'}`;
      report.warnings.push(`{{${use.field}}} is empty for ${some}${reads}; ${fix}`);
    }
  }
  return report;
}
