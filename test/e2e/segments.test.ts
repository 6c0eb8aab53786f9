/**
 * Issue 14, segments and audience checks, through the built CLI with real files and a real SMTP
 * server on 127.0.0.1:
 *
 * - `create --where FIELD=VALUE --where FIELD!=VALUE --exclude-list L`: only the segment is
 *   mailed (counted at the server), `show` prints the segment and its counts add up to the
 *   segment's audience, and nobody outside it gets a ledger row;
 * - an unknown field, an unknown list, a rule without `=`: exit 4, the known names, no change;
 * - the audience check: a field nobody in the audience has is exit 4 at `create` and a failure of
 *   the dry run; a field some lack is a warning with the count; a field with a default is never
 *   warned about; the dry run reports the audience size, text and JSON.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, describeRun, makeWorkspace, type Workspace } from '../helpers/cli.js';
import { type SmtpSink, startSmtpSink } from '../helpers/smtp-sink.js';

const open: Array<{ cleanup?: () => Promise<void>; close?: () => Promise<void> }> = [];

beforeAll(() => {
  assertBuilt();
});

afterEach(async () => {
  for (const resource of open.splice(0).reverse()) {
    await resource.close?.();
    await resource.cleanup?.();
  }
});

interface Counts {
  audience: number;
  sent: number;
  failed: number;
  skipped: number;
  unknown: number;
  retry: number;
  claimed: number;
  pending: number;
}

interface Shown {
  id: number;
  status: string;
  segment: { where: { field: string; op: string; value: string }[]; excludeLists: string[] } | null;
  counts: Counts;
}

interface DryRunReport {
  ok: boolean;
  newsletters: {
    id: number;
    ok: boolean;
    audience: number;
    wouldSend: number;
    problems: string[];
    warnings: string[];
  }[];
}

// A Mailchimp-style export: the header as it comes, fields matched in any case.
const READERS = [
  '"Email Address","Name","City","Plan"',
  'ann@example.net,Ann,Paris,pro',
  'bob@example.net,Bob,Paris,free',
  'cy@example.net,Cy,,pro',
  'dee@example.net,Dee,Lyon,pro',
  'eve@example.net,Eve,Paris,pro',
  'fay@example.net,Fay,Paris,pro',
  'gus@example.net,Gus,Paris,team',
].join('\n');
const STAFF = '"Email Address","Name","City","Plan"\nfay@example.net,Fay,Paris,pro\n';

async function workspace(): Promise<Workspace> {
  const ws = await makeWorkspace('newsletter-segments-');
  open.push(ws);
  await ws.ok(['init']);
  await ws.write('readers.csv', `${READERS}\n`);
  await ws.write('staff.csv', STAFF);
  await ws.ok(['recipients', 'import', 'readers.csv', '--list', 'readers']);
  await ws.ok(['recipients', 'import', 'staff.csv', '--list', 'staff']);
  return ws;
}

async function sink(): Promise<SmtpSink> {
  const started = await startSmtpSink();
  open.push(started);
  return started;
}

const sumOfStates = (c: Counts) =>
  c.sent + c.failed + c.skipped + c.unknown + c.retry + c.claimed + c.pending;

const template = (ws: Workspace, name: string) => path.join(ws.copyTemplates(), name);

describe('segments', () => {
  it('mails only the segment: counted at the SMTP server, and show adds up to the segment', async () => {
    const ws = await workspace();
    const smtp = await sink();
    // eve is in the segment but suppressed: written skipped, counted in its audience.
    await ws.ok(['suppress', 'add', 'eve@example.net', '--reason', 'asked']);
    const base = [
      'create',
      '--subject',
      'Hello {{NAME}}',
      '--template',
      template(ws, 'welcome.mjml'),
      '--list',
      'readers',
      '--now',
      '--json',
    ];
    const segment = ['--where', 'CITY=Paris', '--where', 'plan!=free', '--exclude-list', 'staff'];
    const created = await ws.json<Shown>([...base, ...segment]);
    expect(created.segment).toEqual({
      where: [
        { field: 'city', op: '=', value: 'Paris' },
        { field: 'plan', op: '!=', value: 'free' },
      ],
      excludeLists: ['staff'],
    });
    const text = await ws.ok(['show', String(created.id)]);
    expect(text.stdout).toContain('segment    city = "Paris" and plan != "free"; not on list staff');

    const dry = await ws.json<DryRunReport>(['send-due', '--dry-run', '--json']);
    expect(dry.newsletters[0]).toMatchObject({ id: created.id, ok: true, audience: 3, wouldSend: 2 });

    await ws.ok(['send-due'], { env: { NEWSLETTER_TRANSPORT: smtp.url } });
    // ann and gus: Paris, not free, not staff, not suppressed.
    expect(smtp.total).toBe(2);
    expect(smtp.count('ann@example.net')).toBe(1);
    expect(smtp.count('gus@example.net')).toBe(1);
    for (const outside of [
      'bob@example.net',
      'cy@example.net',
      'dee@example.net',
      'eve@example.net',
      'fay@example.net',
    ])
      expect(smtp.received(outside), outside).toBe(0);

    const shown = await ws.json<Shown & { attention: unknown[] }>(['show', String(created.id), '--json']);
    expect(shown.status).toBe('sent');
    expect(shown.counts).toMatchObject({ audience: 3, sent: 2, skipped: 1, pending: 0 });
    expect(sumOfStates(shown.counts)).toBe(shown.counts.audience);
    expect(shown.segment).toEqual(created.segment);

    // A newsletter without a segment still goes to the whole list (the staff member included).
    const whole = await ws.json<Shown>(base);
    expect(whole.segment).toBeNull();
    await ws.ok(['send-due'], { env: { NEWSLETTER_TRANSPORT: smtp.url } });
    expect(smtp.total).toBe(2 + 6);
    const wholeShown = await ws.json<Shown>(['show', String(whole.id), '--json']);
    expect(wholeShown.counts).toMatchObject({ audience: 7, sent: 6, skipped: 1 });
  });

  it('`!=` mails those without the field too', async () => {
    const ws = await workspace();
    const smtp = await sink();
    const created = await ws.json<Shown>([
      'create',
      '--subject',
      'Hello {{name}}',
      '--template',
      template(ws, 'welcome.mjml'),
      '--list',
      'readers',
      '--where',
      'city!=Paris',
      '--now',
      '--json',
    ]);
    // preview, without --recipient, shows the first of the segment, not the first of the list.
    const preview = await ws.json<{ to: string }>([
      'preview',
      String(created.id),
      '--to-file',
      'p.html',
      '--json',
    ]);
    expect(preview.to).toBe('cy@example.net');
    await ws.ok(['send-due'], { env: { NEWSLETTER_TRANSPORT: smtp.url } });
    expect(smtp.total).toBe(2);
    expect(smtp.count('cy@example.net')).toBe(1);
    expect(smtp.count('dee@example.net')).toBe(1);
    const shown = await ws.json<Shown>(['show', String(created.id), '--json']);
    expect(shown.counts).toMatchObject({ audience: 2, sent: 2, pending: 0 });
  });

  it('refuses an unknown field, an unknown list and a rule without "=" (exit 4, the names, no change)', async () => {
    const ws = await workspace();
    const base = [
      'create',
      '--subject',
      'Hi',
      '--template',
      template(ws, 'welcome.mjml'),
      '--list',
      'readers',
    ];
    const before = ws.dbDigest();
    const cases: [string[], RegExp[]][] = [
      [
        ['--where', 'town=Paris'],
        [/no field "town"/, /known fields: city, email, name, plan/],
      ],
      [['--where', 'cty=Paris'], [/did you mean "city"\?/]],
      [
        ['--exclude-list', 'staf'],
        [/no list "staf"/, /lists: readers, staff/],
      ],
      [
        ['--where', 'Paris'],
        [/has no "="/, /FIELD=VALUE/],
      ],
      [['--exclude-list', 'readers'], [/also a --list/]],
    ];
    for (const [extra, messages] of cases) {
      const result = await ws.run([...base, ...extra]);
      expect(result.code, describeRun([...base, ...extra], result)).toBe(4);
      for (const message of messages) expect(result.stderr).toMatch(message);
      expect(result.stdout).toBe('');
    }
    expect(ws.dbDigest()).toEqual(before);
    expect(await ws.json<unknown[]>(['list', '--json'])).toEqual([]);
  });
});

describe('edit and copy', () => {
  it('edit replaces or removes the segment through the same checks; copy keeps it', async () => {
    const ws = await workspace();
    const id = Number(
      (
        await ws.ok([
          'create',
          '--subject',
          'Hello {{name}}',
          '--template',
          template(ws, 'welcome.mjml'),
          '--list',
          'readers',
          '--where',
          'city=Paris',
        ])
      ).stdout.trim(),
    );
    const shown = () => ws.json<Shown>(['show', String(id), '--json']);
    expect((await shown()).counts.audience).toBe(5);

    await ws.ok(['edit', String(id), '--where', 'City=Lyon']);
    expect((await shown()).segment).toEqual({
      where: [{ field: 'city', op: '=', value: 'Lyon' }],
      excludeLists: [],
    });
    expect((await shown()).counts).toMatchObject({ audience: 1, pending: 1 });

    // Refused through create's checks: nothing changes.
    const before = ws.dbDigest();
    for (const args of [
      ['edit', String(id), '--where', 'town=Lyon'],
      ['edit', String(id), '--exclude-list', 'nobody'],
    ]) {
      const refused = await ws.run(args);
      expect(refused.code, describeRun(args, refused)).toBe(4);
      expect(refused.stderr).toMatch(/Nothing was changed/);
    }
    const both = await ws.run(['edit', String(id), '--no-segment', '--where', 'city=Lyon']);
    expect(both.code, describeRun(['edit', '--no-segment', '--where'], both)).toBe(2);
    expect(ws.dbDigest()).toEqual(before);

    await ws.ok(['edit', String(id), '--no-segment']);
    expect((await shown()).segment).toBeNull();
    expect((await shown()).counts.audience).toBe(7);

    await ws.ok(['edit', String(id), '--where', 'plan!=free', '--exclude-list', 'staff']);
    const copy = await ws.json<Shown>(['copy', String(id), '--json']);
    expect(copy.segment).toEqual({
      where: [{ field: 'plan', op: '!=', value: 'free' }],
      excludeLists: ['staff'],
    });
    const copied = await ws.json<Shown>(['show', String(copy.id), '--json']);
    expect(copied.counts.audience).toBe(5);
  });
});

describe('audience checks', () => {
  it('a field nobody in the audience has is refused at create; one some lack is a warning with the count', async () => {
    const ws = await workspace();
    // partners have no city column at all: the whole database has the field, their audience not.
    await ws.write('partners.csv', 'email,name\np1@example.net,P1\np2@example.net,P2\n');
    await ws.ok(['recipients', 'import', 'partners.csv', '--list', 'partners']);
    const digest = template(ws, 'monthly-digest.mjml');
    const create = (list: string, file = digest) => [
      'create',
      '--subject',
      'News for {{name}}',
      '--template',
      file,
      '--list',
      list,
    ];

    const before = ws.dbDigest();
    const refused = await ws.run(create('partners'));
    expect(refused.code, describeRun(create('partners'), refused)).toBe(4);
    expect(refused.stderr).toContain('{{city}} is empty for all 2 recipients of this audience');
    expect(refused.stderr).toContain('{{city | default:');
    expect(ws.dbDigest()).toEqual(before);

    // readers: cy has no city; 1 of 7 would read the sentence with a hole in it.
    const warned = await ws.run(create('readers'));
    expect(warned.code, describeRun(create('readers'), warned)).toBe(0);
    expect(warned.stderr).toContain(
      '{{city}} is empty for 1 of 7 recipients: they would read "few meet-ups near ."; add a default: {{city | default: "…"}}',
    );
    expect(warned.stderr).not.toContain('{{name}}');

    // The same template with a default everywhere: never warned about.
    const withDefault = path.join(path.dirname(digest), 'digest-default.mjml');
    writeFileSync(
      withDefault,
      readFileSync(digest, 'utf8').replaceAll('{{city}}', '{{city | default: "your area"}}'),
    );
    const quiet = await ws.run(create('partners', withDefault));
    expect(quiet.code, describeRun(create('partners', withDefault), quiet)).toBe(0);
    expect(quiet.stderr).not.toContain('city');

    // A list without names: everyone would read "Hello ,". Said with the count, never refused:
    // every subscriber has a name column, possibly empty.
    await ws.write('nameless.csv', 'email,city\nn1@example.net,Oslo\nn2@example.net,Rome\n');
    await ws.ok(['recipients', 'import', 'nameless.csv', '--list', 'nameless']);
    const nameless = await ws.run(create('nameless'));
    expect(nameless.code, describeRun(create('nameless'), nameless)).toBe(0);
    expect(nameless.stderr).toContain('{{name}} is empty for all 2 recipients');
  });

  it('the dry run reports the audience size and the warning, and fails a newsletter whose audience lost the field', async () => {
    const ws = await workspace();
    const digest = template(ws, 'monthly-digest.mjml');
    const id = Number(
      (
        await ws.ok([
          'create',
          '--subject',
          'News',
          '--template',
          digest,
          '--list',
          'readers',
          '--where',
          'plan=pro',
        ])
      ).stdout.trim(),
    );
    // plan=pro: ann, cy, dee, eve, fay; cy has no city.
    const text = await ws.run(['send-due', '--dry-run', '--newsletter', String(id)]);
    expect(text.code, describeRun(['send-due', '--dry-run'], text)).toBe(0);
    expect(text.stdout).toContain('audience 5, would send 5');
    expect(text.stderr).toContain('{{city}} is empty for 1 of 5 recipients');
    const json = await ws.json<DryRunReport>(['send-due', '--dry-run', '--newsletter', String(id), '--json']);
    expect(json.newsletters[0]).toMatchObject({ ok: true, audience: 5, problems: [] });
    expect(json.newsletters[0]?.warnings).toEqual([
      expect.stringContaining('{{city}} is empty for 1 of 5 recipients'),
    ]);

    // A re-import empties everyone's city: the dry run now fails that newsletter (exit 8).
    await ws.write(
      'no-city.csv',
      'email,name,city,plan\nann@example.net,Ann,,pro\ndee@example.net,Dee,,pro\neve@example.net,Eve,,pro\nfay@example.net,Fay,,pro\n',
    );
    await ws.ok(['recipients', 'import', 'no-city.csv']);
    const failed = await ws.run(['send-due', '--dry-run', '--newsletter', String(id), '--json']);
    expect(failed.code, describeRun(['send-due', '--dry-run', '--json'], failed)).toBe(8);
    const report = JSON.parse(failed.stdout) as DryRunReport;
    expect(report.ok).toBe(false);
    expect(report.newsletters[0]?.problems).toEqual([
      expect.stringContaining('{{city}} is empty for all 5 recipients of this audience'),
    ]);
  });
});
