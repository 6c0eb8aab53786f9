/**
 * What `create` (and `edit`) check about who a newsletter goes to, beyond its template: the
 * segment options (`--where`, `--exclude-list`, src/domain/segment.ts) against the fields and
 * lists that exist, and the template's fields against the audience itself
 * (src/domain/audience-fields.ts). Problems are added to the command's own list, so that every
 * problem is reported at once and nothing is written (exit 4); warnings are returned for the
 * command to print.
 */
import { audienceFieldReport } from '../domain/audience-fields.js';
import { type Audience, describeSegment, parseSegment, type Segment } from '../domain/segment.js';
import type { VerifiedBody } from '../domain/types.js';
import type { Store } from '../store/store.js';

export interface SegmentFlags {
  where?: string[] | undefined;
  excludeList?: string[] | undefined;
}

/** The segment the options describe (null: none given), its problems added to `problems`. */
export async function segmentOf(
  store: Store,
  flags: SegmentFlags,
  sendLists: readonly string[],
  problems: string[],
): Promise<Segment | null> {
  if ((flags.where?.length ?? 0) + (flags.excludeList?.length ?? 0) === 0) return null;
  const parsed = parseSegment(
    { where: flags.where, excludeLists: flags.excludeList },
    {
      fields: await store.knownFieldNames(),
      lists: (await store.lists()).map((list) => list.name),
      sendLists,
    },
  );
  problems.push(...parsed.problems);
  return parsed.segment;
}

/**
 * The built body's fields against the audience: an error for a field nobody in it has, a warning
 * with the count for one some lack. A segment that leaves nobody is a problem too, said as such.
 */
export async function checkAudience(
  store: Store,
  audience: Audience,
  body: VerifiedBody | null,
  problems: string[],
): Promise<string[]> {
  if (audience.segment !== null && (await store.audienceSize(audience.lists, audience.segment)) === 0) {
    problems.push(
      `Nobody on ${audience.lists.join(', ')} is in the segment (${describeSegment(audience.segment)}); ` +
        'check the --where values (they match exactly, case included) with `newsletter recipients list --json`.',
    );
    return [];
  }
  if (body === null) return [];
  const { fieldUses } = await import('../render/field-uses.js');
  const uses = fieldUses(body);
  if (uses.length === 0) return [];
  const report = audienceFieldReport(
    uses,
    await store.fieldGaps(
      audience,
      uses.map((use) => use.field),
    ),
  );
  problems.push(...report.errors);
  return report.warnings;
}

/** `edit`'s segment options: `--where`/`--exclude-list` (a new segment) or `--no-segment`. */
export interface SegmentEditFlags extends SegmentFlags {
  /** False with `--no-segment` (commander's negated option; true or absent otherwise). */
  segment?: boolean | undefined;
}

export function segmentEdited(flags: SegmentEditFlags): boolean {
  return flags.segment === false || (flags.where?.length ?? 0) + (flags.excludeList?.length ?? 0) > 0;
}

/**
 * The segment after an `edit`: a new one replaces the stored one whole (rules are not merged, so
 * what `show` prints is exactly what was typed last), `--no-segment` removes it, and without
 * either the stored one stays, checked against the lists it would now go with.
 */
export async function segmentAfterEdit(
  store: Store,
  flags: SegmentEditFlags,
  lists: readonly string[],
  stored: Segment | null,
  problems: string[],
): Promise<Segment | null> {
  if (flags.segment === false) return null;
  if (segmentEdited(flags)) return segmentOf(store, flags, lists, problems);
  for (const list of stored?.excludeLists ?? []) {
    if (lists.includes(list))
      problems.push(
        `--list "${list}": its segment excludes that list (--exclude-list ${list}); give a new segment with --where/--exclude-list, or --no-segment.`,
      );
  }
  return stored;
}
