/**
 * A newsletter's whole life (issue 14, items 5 and 6), through the built CLI with real files and
 * a real SMTP server:
 *
 * - `edit` changes subject, template, lists and From of a draft or a scheduled newsletter, after
 *   create's checks; a refused edit (bad input, or a newsletter already sent) changes no byte;
 * - a send uses the template stored by `create`/`edit`, never the file again: one edited on disk,
 *   and then the whole folder removed, changes nothing until `edit --template`; `show`, `preview`
 *   and the dry run name the same version (sha256);
 * - `copy` makes a draft from the stored template, subject, lists and From; `delete` removes a
 *   draft, a failed or a cancelled newsletter with nothing sent, and refuses the rest;
 * - a failed newsletter is fixed with `edit --template`, scheduled again (its build re-checked),
 *   `status` stops warning, and it is sent;
 * - send times typed with a zone are shown in it, with the offset, by show, list, status and the
 *   dry run; `--json` keeps UTC ISO 8601 (and `recipients list --json` too).
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, describeRun, makeWorkspace, type Workspace } from '../helpers/cli.js';
import { asCreatedBeforeStoredTemplates } from '../helpers/legacy-newsletter.js';
import { type SmtpSink, startSmtpSink } from '../helpers/smtp-sink.js';

const open: Array<{ cleanup?: () => Promise<void>; close?: () => Promise<void> }> = [];

beforeAll(() => {
  assertBuilt();
});

afterEach(async () => {
  for (const item of open.splice(0).reverse()) await (item.close ?? item.cleanup)?.();
});

interface Shown {
  id: number;
  status: string;
  subject: string;
  from: string | null;
  lists: string[];
  template: string;
  scheduledAt: string | null;
  scheduledZone: string | null;
  failureReason: string | null;
  templateVersion: { sha256: string; storedAt: string; files: string[] } | null;
  counts?: { sent: number; audience: number };
}

/** init, then `readers` (3 people) and `partners` (1 person). */
async function workspace(): Promise<{ ws: Workspace; templates: string }> {
  const ws = await makeWorkspace('newsletter-life-');
  open.push(ws);
  await ws.ok(['init']);
  await ws.write(
    'readers.csv',
    'email,name\nann@example.net,Ann\nbob@example.net,Bob\ncid@example.net,Cid\n',
  );
  await ws.ok(['recipients', 'import', 'readers.csv', '--list', 'readers']);
  await ws.write('partners.csv', 'email,name\npat@example.org,Pat\n');
  await ws.ok(['recipients', 'import', 'partners.csv', '--list', 'partners']);
  return { ws, templates: ws.copyTemplates() };
}

async function sink(): Promise<SmtpSink> {
  const started = await startSmtpSink();
  open.push(started);
  return started;
}

const show = (ws: Workspace, id: number) => ws.json<Shown>(['show', String(id), '--json']);

async function create(ws: Workspace, template: string, extra: string[] = [], subject = 'Hello {{name}}') {
  return ws.json<Shown>([
    'create',
    '--subject',
    subject,
    '--template',
    template,
    '--list',
    'readers',
    ...extra,
    '--json',
  ]);
}

/** A copy of welcome.mjml whose body says `marker`, in the same folder (so its includes resolve). */
function templateSaying(templates: string, name: string, marker: string): string {
  const file = path.join(templates, name);
  const source = readFileSync(path.join(templates, 'welcome.mjml'), 'utf8');
  writeFileSync(file, source.replace('<mj-text', `<mj-text>${marker}</mj-text>\n<mj-text`));
  return file;
}

/** What the SMTP server received, decoded enough to search: subject lines and QP soft breaks. */
function received(smtp: SmtpSink): string[] {
  return smtp.messages.map((m) => m.raw.toString('utf8').replace(/=\r?\n/g, ''));
}

describe('edit', () => {
  it('changes subject, template, lists and From of a draft, then of a scheduled newsletter', async () => {
    const { ws, templates } = await workspace();
    const draft = await create(ws, path.join(templates, 'welcome.mjml'));
    expect(draft).toMatchObject({ status: 'draft', from: 'Example News <news@example.org>' });

    const other = templateSaying(templates, 'other.mjml', 'OTHERTEMPLATE');
    const edited = await ws.json<Shown>([
      'edit',
      String(draft.id),
      '--subject',
      'Dear {{name}}',
      '--template',
      other,
      '--list',
      'partners',
      '--list',
      'readers',
      '--from',
      'Partners <partners@example.org>',
      '--json',
    ]);
    expect(edited).toMatchObject({
      id: draft.id,
      status: 'draft',
      subject: 'Dear {{name}}',
      from: 'Partners <partners@example.org>',
      lists: ['partners', 'readers'],
      template: other,
    });
    expect(edited.templateVersion?.sha256).not.toBe(draft.templateVersion?.sha256);

    await ws.ok(['schedule', String(draft.id), '--at', '+2h']);
    const before = await show(ws, draft.id);
    const text = await ws.ok(['edit', String(draft.id), '--subject', 'Later {{name}}']);
    expect(text.stdout).toContain(`Edited newsletter ${draft.id} (subject)`);
    expect(await show(ws, draft.id)).toMatchObject({
      status: 'scheduled',
      subject: 'Later {{name}}',
      scheduledAt: before.scheduledAt,
      lists: ['partners', 'readers'],
    });
  });

  it("re-runs create's checks and changes nothing when one fails (exit 4); nothing to edit is exit 2", async () => {
    const { ws, templates } = await workspace();
    const draft = await create(ws, path.join(templates, 'welcome.mjml'));
    const broken = await ws.write(
      'templates/broken.mjml',
      readFileSync(path.join(templates, 'welcome.mjml'), 'utf8').replace(
        '<mj-text',
        '<mj-text>{{shoe_size}}</mj-text><mj-text',
      ),
    );
    const digest = ws.dbDigest();
    const cases: [string[], RegExp][] = [
      [['--template', broken], /shoe_size/],
      [['--list', 'nosuch'], /There is no list "nosuch"/],
      [['--subject', ' '], /--subject is empty/],
      [['--from', 'not an address'], /--from/],
      [['--template', ws.path('missing.mjml')], /no such file/],
    ];
    for (const [args, message] of cases) {
      const refused = await ws.run(['edit', String(draft.id), ...args]);
      expect(refused.code, describeRun(['edit', ...args], refused)).toBe(4);
      expect(refused.stderr).toMatch(message);
      expect(refused.stderr).toContain('Nothing was changed');
    }
    const nothing = await ws.run(['edit', String(draft.id)]);
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toContain('Nothing to edit');
    expect(ws.dbDigest()).toEqual(digest);
  });

  it('refuses a sent newsletter (exit 4, pointing to copy) and changes no byte', async () => {
    const { ws, templates } = await workspace();
    const smtp = await sink();
    const sent = await create(ws, path.join(templates, 'welcome.mjml'), ['--now']);
    await ws.ok(['send-due'], { env: { NEWSLETTER_TRANSPORT: smtp.url } });
    expect((await show(ws, sent.id)).status).toBe('sent');
    const digest = ws.dbDigest();
    const refused = await ws.run(['edit', String(sent.id), '--subject', 'Too late']);
    expect(refused.code, describeRun(['edit'], refused)).toBe(4);
    expect(refused.stderr).toContain(`Newsletter ${sent.id} was sent already`);
    expect(refused.stderr).toContain(`newsletter copy ${sent.id}`);
    expect(ws.dbDigest()).toEqual(digest);
  });
});

describe('what was tested is what is sent', () => {
  it('a template edited on disk after create, then removed, changes nothing until edit --template', async () => {
    const { ws, templates } = await workspace();
    const smtp = await sink();
    const welcome = path.join(templates, 'welcome.mjml');
    const kept = await create(ws, welcome, ['--now'], 'Kept {{name}}');
    const edited = await create(ws, welcome, ['--now'], 'Edited {{name}}');
    const version = kept.templateVersion?.sha256 as string;
    expect(version).toMatch(/^[0-9a-f]{64}$/);
    expect(kept.templateVersion?.files).toEqual(expect.arrayContaining(['welcome.mjml']));
    expect(kept.templateVersion?.files.length).toBeGreaterThan(1); // its includes are stored too

    // The file changes on disk: nothing changes for the newsletters.
    templateSaying(templates, 'welcome.mjml', 'CHANGEDONDISK');
    const preview = await ws.json<{ file: string; template: { sha256: string } }>([
      'preview',
      String(kept.id),
      '--to-file',
      ws.path('kept.html'),
      '--json',
    ]);
    expect(preview.template.sha256).toBe(version);
    expect(readFileSync(preview.file, 'utf8')).not.toContain('CHANGEDONDISK');
    expect((await show(ws, kept.id)).templateVersion?.sha256).toBe(version);
    const shownText = await ws.ok(['show', String(kept.id)]);
    expect(shownText.stdout).toContain(`sha256 ${version.slice(0, 12)}`);
    const dry = await ws.ok(['send-due', '--dry-run', '--newsletter', String(kept.id)]);
    expect(dry.stdout).toContain(`template sha256 ${version.slice(0, 12)}`);

    // Until `edit --template` stores the new version, for that newsletter only.
    const after = await ws.json<Shown>(['edit', String(edited.id), '--template', welcome, '--json']);
    expect(after.templateVersion?.sha256).not.toBe(version);
    const previewEdited = await ws.json<{ file: string; template: { sha256: string } }>([
      'preview',
      String(edited.id),
      '--to-file',
      ws.path('edited.html'),
      '--json',
    ]);
    expect(previewEdited.template.sha256).toBe(after.templateVersion?.sha256);
    expect(readFileSync(previewEdited.file, 'utf8')).toContain('CHANGEDONDISK');

    // The files are gone by send time (moved, or hidden by the systemd unit): both still go out.
    rmSync(templates, { recursive: true, force: true });
    const run = await ws.run(['send-due'], { env: { NEWSLETTER_TRANSPORT: smtp.url } });
    expect(run.code, describeRun(['send-due'], run)).toBe(0);
    expect(smtp.total).toBe(6);
    const messages = received(smtp);
    const keptMessages = messages.filter((m) => /^Subject: Kept /m.test(m));
    const editedMessages = messages.filter((m) => /^Subject: Edited /m.test(m));
    expect(keptMessages).toHaveLength(3);
    expect(editedMessages).toHaveLength(3);
    for (const m of keptMessages) expect(m).not.toContain('CHANGEDONDISK');
    for (const m of editedMessages) expect(m).toContain('CHANGEDONDISK');
    // The sent body names the version that was shown.
    const db = new Database(ws.db, { readonly: true });
    const body = db.prepare('SELECT body FROM newsletters WHERE id = ?').get(kept.id) as { body: string };
    db.close();
    expect(JSON.parse(body.body).templateHash).toBe(version);
  });
});

describe('copy and delete', () => {
  it('copy makes a draft from the stored template, subject, lists and From, even with the file gone', async () => {
    const { ws, templates } = await workspace();
    const source = await create(ws, path.join(templates, 'welcome.mjml'), [
      '--list',
      'partners',
      '--from',
      'Partners <partners@example.org>',
      '--at',
      '+1h',
    ]);
    rmSync(templates, { recursive: true, force: true });
    const copy = await ws.json<Shown & { copiedFrom: number }>(['copy', String(source.id), '--json']);
    expect(copy).toMatchObject({
      status: 'draft',
      scheduledAt: null,
      subject: source.subject,
      lists: source.lists,
      from: 'Partners <partners@example.org>',
      template: source.template,
      copiedFrom: source.id,
    });
    expect(copy.id).not.toBe(source.id);
    expect(copy.templateVersion?.sha256).toBe(source.templateVersion?.sha256);
    const printed = await ws.ok(['copy', String(source.id)]);
    expect(printed.stdout.trim()).toMatch(/^\d+$/);
  });

  it('delete removes a draft and a cancelled newsletter; refuses scheduled and sent ones (failed: store contract)', async () => {
    const { ws, templates } = await workspace();
    const smtp = await sink();
    const welcome = path.join(templates, 'welcome.mjml');
    const draft = await create(ws, welcome);
    const cancelled = await create(ws, welcome, ['--at', '+1h']);
    await ws.ok(['cancel', String(cancelled.id)]);
    const scheduled = await create(ws, welcome, ['--at', '+1h']);

    const deleted = await ws.ok(['delete', String(draft.id)]);
    expect(deleted.stdout).toContain(`Deleted newsletter ${draft.id} (draft)`);
    expect(await ws.json(['delete', String(cancelled.id), '--json'])).toMatchObject({
      id: cancelled.id,
      deleted: true,
      status: 'cancelled',
    });
    expect((await ws.json<Shown[]>(['list', '--json'])).map((n) => n.id)).toEqual([scheduled.id]);
    const gone = await ws.run(['show', String(draft.id)]);
    expect(gone.code).toBe(4);

    let digest = ws.dbDigest();
    const refusedScheduled = await ws.run(['delete', String(scheduled.id)]);
    expect(refusedScheduled.code).toBe(4);
    expect(refusedScheduled.stderr).toContain(`newsletter cancel ${scheduled.id}`);
    expect(ws.dbDigest()).toEqual(digest);

    await ws.ok(['schedule', String(scheduled.id), '--now']);
    await ws.ok(['send-due'], { env: { NEWSLETTER_TRANSPORT: smtp.url } });
    digest = ws.dbDigest();
    const refusedSent = await ws.run(['delete', String(scheduled.id)]);
    expect(refusedSent.code).toBe(4);
    expect(refusedSent.stderr).toContain('was sent already');
    expect(ws.dbDigest()).toEqual(digest);
    expect((await show(ws, scheduled.id)).counts?.sent).toBe(3);
  });
});

describe('a failed newsletter, fixed and sent', () => {
  /**
   * Since templates are stored, a build can fail at send time only for a newsletter created
   * before they were (its file is read then): test/helpers/legacy-newsletter.ts makes one as an
   * upgraded database has it. Everything after that goes through the CLI.
   */
  it('fails on a broken file, is refused again until fixed, then edit --template and schedule send it', async () => {
    const { ws, templates } = await workspace();
    const smtp = await sink();
    const file = templateSaying(templates, 'legacy.mjml', 'FIXEDVERSION');
    const legacy = await create(ws, file, ['--now']);
    asCreatedBeforeStoredTemplates(ws.db, legacy.id);
    expect((await ws.ok(['show', String(legacy.id)])).stdout).toContain('read from the file at each build');

    const good = readFileSync(file, 'utf8');
    writeFileSync(file, good.replace('<mj-button ', '<mj-button colour-of-sky="blue" '));
    const failedRun = await ws.run(['send-due'], { env: { NEWSLETTER_TRANSPORT: smtp.url } });
    expect(failedRun.code, describeRun(['send-due'], failedRun)).toBe(8);
    expect(await show(ws, legacy.id)).toMatchObject({ status: 'failed' });
    const warned = await ws.run(['status']);
    expect(warned.stderr).toContain(`newsletter ${legacy.id} failed to build`);
    expect(warned.stderr).toContain(`newsletter edit ${legacy.id} --template FILE`);

    // Scheduling it again re-checks the build: still broken, still refused, nothing changed.
    const digest = ws.dbDigest();
    const refused = await ws.run(['schedule', String(legacy.id), '--now']);
    expect(refused.code, describeRun(['schedule'], refused)).toBe(4);
    expect(refused.stderr).toContain('colour-of-sky');
    expect(ws.dbDigest()).toEqual(digest);
    // The fix: the file corrected, then stored with `edit --template` (a failed newsletter sent
    // nothing, so it may be edited), then scheduled again: the check passes.
    writeFileSync(file, good);
    const fixed = await ws.json<Shown>(['edit', String(legacy.id), '--template', file, '--json']);
    expect(fixed.status).toBe('failed');
    expect(fixed.templateVersion?.files).toContain('legacy.mjml');
    const rescheduled = await ws.json<Shown>(['schedule', String(legacy.id), '--now', '--json']);
    expect(rescheduled).toMatchObject({ status: 'scheduled', failureReason: null });
    const quiet = await ws.run(['status']);
    expect(quiet.stderr).not.toContain('failed to build');
    const sent = await ws.run(['send-due'], { env: { NEWSLETTER_TRANSPORT: smtp.url } });
    expect(sent.code, describeRun(['send-due'], sent)).toBe(0);
    expect(smtp.total).toBe(3);
    for (const m of received(smtp)) expect(m).toContain('FIXEDVERSION');
    expect(await show(ws, legacy.id)).toMatchObject({ status: 'sent', counts: { sent: 3 } });
  });
});

describe('send times in the zone typed', () => {
  it('show, list, status and the dry run show the zone and offset; --json keeps UTC ISO 8601', async () => {
    const { ws, templates } = await workspace();
    const at = '2099-12-24 09:00 Europe/Paris';
    const created = await create(ws, path.join(templates, 'welcome.mjml'), ['--at', at]);
    expect(created).toMatchObject({ scheduledAt: '2099-12-24T08:00:00.000Z', scheduledZone: 'Europe/Paris' });
    const local = '2099-12-24 09:00 +01:00 (Europe/Paris)';
    // TZ elsewhere: the time stays the one typed, in its zone.
    const env = { env: { TZ: 'America/New_York' } };
    expect((await ws.ok(['show', String(created.id)], env)).stdout).toContain(`scheduled  ${local}`);
    expect((await ws.ok(['list'], env)).stdout).toContain(local);
    expect((await ws.ok(['status'], env)).stdout).toContain(`at ${local}`);
    expect(
      (await ws.ok(['send-due', '--dry-run', '--newsletter', String(created.id)], env)).stdout,
    ).toContain(`due ${local}`);

    const offset = await ws.json<Shown>([
      'schedule',
      String(created.id),
      '--at',
      '2099-07-01T09:00-04:00',
      '--json',
    ]);
    expect(offset).toMatchObject({ scheduledAt: '2099-07-01T13:00:00.000Z', scheduledZone: '-04:00' });
    expect((await ws.ok(['show', String(created.id)], env)).stdout).toContain('2099-07-01 09:00 -04:00');

    // No zone typed: TZ's, with its offset (and not its name, which every time would repeat).
    await ws.ok(['schedule', String(created.id), '--at', '2099-07-01 09:00'], { env: { TZ: 'Asia/Tokyo' } });
    const inTokyo = (await ws.ok(['show', String(created.id)], { env: { TZ: 'Asia/Tokyo' } })).stdout;
    expect(inTokyo).toContain('2099-07-01 09:00 +09:00');
    expect(inTokyo).not.toContain('(Asia/Tokyo)');

    const unknownZone = await ws.run([
      'schedule',
      String(created.id),
      '--at',
      '2099-07-01 09:00 Mars/Olympus',
    ]);
    expect(unknownZone.code).toBe(4);
    expect(unknownZone.stderr).toContain('Europe/Paris');

    const people = await ws.json<{ createdAt: unknown }[]>(['recipients', 'list', '--json']);
    for (const person of people)
      expect(person.createdAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
  });
});
