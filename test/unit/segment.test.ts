/**
 * Segments and the audience check, as rules (src/domain/segment.ts, src/domain/audience-fields.ts,
 * src/render/field-uses.ts): how `--where` and `--exclude-list` are read and refused, how a
 * segment is shown and stored, and which fields of a body are checked, with what words.
 */
import { describe, expect, it } from 'vitest';
import { audienceFieldReport } from '../../src/domain/audience-fields.js';
import {
  describeSegment,
  parseRule,
  parseSegment,
  segmentFromColumn,
  segmentToColumn,
} from '../../src/domain/segment.js';
import { fieldUses } from '../../src/render/field-uses.js';

const known = {
  fields: ['city', 'first_name', 'plan'],
  lists: ['readers', 'staff', 'vip'],
  sendLists: ['readers'],
};

describe('parseRule', () => {
  it('reads FIELD=VALUE and FIELD!=VALUE, the field named as an import names a column', () => {
    expect(parseRule('City=Paris')).toEqual({ field: 'city', op: '=', value: 'Paris' });
    expect(parseRule(' First Name != Ann ')).toEqual({ field: 'first_name', op: '!=', value: 'Ann' });
    expect(parseRule('FirstName=x')).toEqual({ field: 'firstname', op: '=', value: 'x' });
    // Only the first "=" splits: the value may hold more.
    expect(parseRule('plan=a=b')).toEqual({ field: 'plan', op: '=', value: 'a=b' });
    expect(parseRule('city=')).toEqual({ field: 'city', op: '=', value: '' });
    expect(parseRule('email=Ann@Example.ORG')).toEqual({ field: 'email', op: '=', value: 'ann@example.org' });
  });

  it('says what is wrong with a rule it cannot read', () => {
    expect(parseRule('Paris')).toMatch(/has no "=".*FIELD=VALUE/);
    expect(parseRule('=Paris')).toMatch(/names no field before "="/);
    expect(parseRule('!=Paris')).toMatch(/names no field before "!="/);
  });
});

describe('parseSegment', () => {
  it('is null when no option was given: the whole lists', () => {
    expect(parseSegment({}, known)).toEqual({ segment: null, problems: [] });
    expect(parseSegment({ where: [], excludeLists: [] }, known)).toEqual({ segment: null, problems: [] });
  });

  it('keeps every rule (AND), once each, and the excluded lists sorted', () => {
    const parsed = parseSegment(
      {
        where: ['city=Paris', 'CITY=Paris', 'plan!=free', 'name=', 'email!=boss@example.org'],
        excludeLists: ['vip', 'staff', 'vip'],
      },
      known,
    );
    expect(parsed.problems).toEqual([]);
    expect(parsed.segment).toEqual({
      where: [
        { field: 'city', op: '=', value: 'Paris' },
        { field: 'plan', op: '!=', value: 'free' },
        { field: 'name', op: '=', value: '' },
        { field: 'email', op: '!=', value: 'boss@example.org' },
      ],
      excludeLists: ['staff', 'vip'],
    });
  });

  it('reports every unknown field and list at once, with the known names', () => {
    const parsed = parseSegment(
      { where: ['cty=Paris', 'colour=red', 'nothing'], excludeLists: ['stuff', 'readers'] },
      known,
    );
    expect(parsed.problems).toEqual([
      '--where "cty=Paris": there is no field "cty" (did you mean "city"?); known fields: city, email, first_name, name, plan.',
      '--where "colour=red": there is no field "colour"; known fields: city, email, first_name, name, plan.',
      expect.stringMatching(/^--where "nothing" has no "="/),
      '--exclude-list "stuff": there is no list "stuff"; lists: readers, staff, vip.',
      expect.stringMatching(/^--exclude-list "readers" is also a --list/),
    ]);
  });
});

describe('describeSegment and the stored form', () => {
  it('shows the rules and the excluded lists in words', () => {
    expect(describeSegment(null)).toBe('none (the whole lists)');
    expect(
      describeSegment({
        where: [
          { field: 'city', op: '=', value: 'Paris' },
          { field: 'plan', op: '!=', value: '' },
        ],
        excludeLists: ['staff', 'vip'],
      }),
    ).toBe('city = "Paris" and plan != ""; not on lists staff, vip');
    expect(describeSegment({ where: [], excludeLists: ['staff'] })).toBe('not on list staff');
  });

  it('stores none as NULL and reads back what it stored, from text or parsed JSON', () => {
    expect(segmentToColumn(null)).toBeNull();
    expect(segmentToColumn({ where: [], excludeLists: [] })).toBeNull();
    const segment = {
      where: [{ field: 'city', op: '=' as const, value: "O'Hare" }],
      excludeLists: ['staff'],
    };
    const stored = segmentToColumn(segment);
    expect(segmentFromColumn(stored)).toEqual(segment);
    expect(segmentFromColumn(JSON.parse(stored as string))).toEqual(segment);
    expect(segmentFromColumn(null)).toBeNull();
  });
});

describe('the audience check', () => {
  const body = {
    subject: 'News for {{name}}',
    html: '<p>Hello {{name}}, meet-ups near {{city}}. {{plan | default: "any"}} <a href="{{unsubscribe_url}}">x</a> {{email}}</p>',
    text: 'Hello {{name}},\nthis month: a few meet-ups near {{city}}.\nPlan: {{plan | default: "any"}}\n{{email}} {{unsubscribe_url}}',
  };

  it('checks the fields used without a default, never email or the unsubscribe link', () => {
    expect(fieldUses(body)).toEqual([
      { field: 'name', reads: 'Hello ,' },
      { field: 'city', reads: 'few meet-ups near .' },
    ]);
  });

  it('a field some lack is a warning with the count and what they would read', () => {
    const report = audienceFieldReport(fieldUses(body), {
      recipients: 400,
      empty: [
        { field: 'name', count: 0 },
        { field: 'city', count: 37 },
      ],
    });
    expect(report).toEqual({
      errors: [],
      warnings: [
        '{{city}} is empty for 37 of 400 recipients: they would read "few meet-ups near ."; add a default: {{city | default: "…"}}',
      ],
    });
  });

  it('a field nobody has is an error; an empty name for all is only a warning; no audience, no verdict', () => {
    const report = audienceFieldReport(fieldUses(body), {
      recipients: 3,
      empty: [
        { field: 'name', count: 3 },
        { field: 'city', count: 3 },
      ],
    });
    expect(report.errors).toEqual([
      '{{city}} is empty for all 3 recipients of this audience: they would read "few meet-ups near ."; add a default: {{city | default: "…"}}, or send to an audience that has it.',
    ]);
    expect(report.warnings).toEqual([
      '{{name}} is empty for all 3 recipients: they would read "Hello ,"; add a default: {{name | default: "…"}}',
    ]);
    expect(audienceFieldReport(fieldUses(body), { recipients: 0, empty: [] })).toEqual({
      errors: [],
      warnings: [],
    });
  });
});
