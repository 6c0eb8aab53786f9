/**
 * Small edges of issue 15, through the built CLI: a bad `--limit` is a usage error (exit 2, as the
 * README's table says of a bad option), and messages say a newsletter's status in words that read
 * right ("failed to build", never "is failed"), cron's mail for a failed build included.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, describeRun, makeWorkspace, type Workspace } from '../helpers/cli.js';
import { asCreatedBeforeStoredTemplates } from '../helpers/legacy-newsletter.js';

let ws: Workspace;

beforeAll(async () => {
  assertBuilt();
  ws = await makeWorkspace('newsletter-usage-');
  await ws.ok(['init']);
  const { file } = await ws.writeCsv(2);
  await ws.ok(['recipients', 'import', file, '--list', 'readers']);
});
afterAll(async () => ws?.cleanup());

describe('--limit', () => {
  const cases = [
    ['recipients', 'list', '--limit', '0'],
    ['suppress', 'list', '--limit', '0'],
    ['runs', '--limit', '0'],
    ['runs', '--limit', 'many'],
  ];
  it.each(cases.map((args) => [args.join(' '), args] as const))('%s: exit 2', async (_title, args) => {
    const result = await ws.run(args);
    expect(result.code, describeRun(args, result)).toBe(2);
    expect(result.stderr).toContain('must be a whole number above 0');
  });
});

describe('wording', () => {
  it('a failed newsletter "failed to build"; one problem is not "a problem."', async () => {
    const template = path.join(ws.copyTemplates(), 'welcome.mjml');
    const id = await ws.createDue();
    // Only a newsletter from before templates were stored reads its file at send time (issue 14).
    asCreatedBeforeStoredTemplates(ws.db, id);
    writeFileSync(
      template,
      readFileSync(template, 'utf8').replace('<mj-button ', '<mj-button colour-of-sky="blue" '),
    );
    const sent = await ws.run(['send-due'], { env: { NEWSLETTER_TRANSPORT: 'file:./outbox' } });
    expect(sent.code, describeRun(['send-due'], sent)).toBe(8);
    // Cron's mail: text that says what happened and what to do, never JSON.
    expect(sent.stderr.split('\n').filter((line) => line.startsWith('{'))).toEqual([]);
    expect(sent.stderr).toContain('error: send-due finished, but a newsletter failed to build.');
    expect(sent.stderr).toContain(
      `Fix the template and store it (\`newsletter edit ${id} --template FILE\`), then \`newsletter schedule ${id} --now\``,
    );

    // Schedule would rebuild it first and report the build; cancel meets the status itself.
    const cancelled = await ws.run(['cancel', String(id)]);
    expect(cancelled.code).toBe(4);
    expect(cancelled.stderr).toContain(`Newsletter ${id} failed to build; it can no longer be cancelled.`);
    expect(cancelled.stderr).not.toContain('is failed');

    const created = await ws.run(['create', '--subject', 'Hi', '--template', template, '--list', 'readers']);
    expect(created.code).toBe(4);
    expect(created.stderr.split('\n')[0]).toBe('error: Cannot create the newsletter:');
  });
});
