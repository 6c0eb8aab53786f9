/**
 * doctor and the cron forms operators really write (issue 15), through the built CLI with real
 * files: the README's `cd DIR && newsletter send-due` (DIR's .env, else DIR/newsletter.db) and
 * `--env-file` lines, duplicated, must be seen as duplicates of this database; identical lines
 * whose database cannot be worked out are duplicates all the same. Also: a misspelt NEWSLETTER_*
 * name is said (by doctor, and once on stderr by any other command), the sending time of the
 * largest list at the configured pace, and list sizes that count who a newsletter would reach.
 * Every doctor run passes --crontab, so the host's own crontabs never leak into a test.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, describeRun, makeWorkspace, type Workspace } from '../helpers/cli.js';

interface Check {
  name: string;
  level: 'ok' | 'warning' | 'problem';
  message: string;
  fix?: string;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
beforeAll(() => assertBuilt());

/** A workspace whose configuration comes from DIR/.env, as with the README's `cd DIR &&` line. */
async function siteWorkspace(dotEnv: string | null): Promise<Workspace> {
  const ws = await makeWorkspace('newsletter-doctor-forms-');
  cleanups.push(() => ws.cleanup());
  ws.env.NEWSLETTER_TRANSPORT = 'file:./outbox';
  if (dotEnv !== null) {
    delete ws.env.NEWSLETTER_DATABASE;
    await ws.write('.env', dotEnv);
  }
  await ws.ok(['init']);
  return ws;
}

async function doctor(ws: Workspace, args: string[], env: Record<string, string | undefined> = {}) {
  const all = ['doctor', '--json', ...args];
  const result = await ws.run(all, { env });
  const report = JSON.parse(result.stdout) as { checks: Check[]; exitCode: number };
  const check = (name: string): Check | undefined => report.checks.find((c) => c.name === name);
  return { result, report, check, describe: describeRun(all, result) };
}

describe('doctor resolves the cron forms of the README', () => {
  it('`cd DIR && newsletter send-due` twice, in a file named crontab: DIR/.env resolved, a duplicate', async () => {
    const ws = await siteWorkspace('NEWSLETTER_DATABASE=./site.db\n');
    const line = `* * * * * cd ${ws.dir} && newsletter send-due`;
    // Named `crontab`, as `crontab -l > crontab` leaves it: `cd` is no user, so this is a user crontab.
    const cron = await ws.write('crontab', `MAILTO=ops@example.org\n${line}\n${line}\n`);
    const { result, check, describe: said } = await doctor(ws, ['--crontab', cron]);
    expect(result.code, said).toBe(0);
    expect(check('cron')).toMatchObject({
      level: 'warning',
      message: expect.stringContaining(`send-due for ${ws.path('site.db')} appears 2 times: ${cron}:2`),
      fix: expect.stringContaining('Keep exactly one line'),
    });
    expect(check('cron')?.message).toContain(`${cron}:3`);
    expect(check('cron')?.message).not.toContain('could not be worked out');
    expect(check('cron-duplicates')).toBeUndefined();
  });

  it('without a .env: DIR/newsletter.db; and an --env-file line for the same database counts too', async () => {
    const ws = await siteWorkspace(null);
    const envFile = await ws.write('site.env', `NEWSLETTER_DATABASE=${ws.db}\n`);
    const cron = await ws.write(
      'crontab',
      [
        'MAILTO=ops@example.org',
        `* * * * * cd ${ws.dir} && newsletter send-due`,
        `*/5 * * * * newsletter --env-file ${envFile} send-due --max-seconds 50`,
        `* * * * * cd ${ws.dir} && newsletter send-due --env-file=site.env`,
        '',
      ].join('\n'),
    );
    const { check, describe: said } = await doctor(ws, ['--crontab', cron], {
      NEWSLETTER_DATABASE: undefined,
    });
    expect(check('cron')?.message, said).toContain(`send-due for ${ws.db} appears 3 times`);
    for (const line of [2, 3, 4]) expect(check('cron')?.message).toContain(`${cron}:${line}`);
  });

  it('identical lines whose database cannot be worked out are still reported as duplicates', async () => {
    const ws = await siteWorkspace(null);
    const line = `* * * * * newsletter --env-file ${ws.path('missing.env')} send-due`;
    const cron = await ws.write('crontab', `MAILTO=ops@example.org\n${line}\n${line}\n`);
    const { result, check, describe: said } = await doctor(ws, ['--crontab', cron]);
    expect(result.code, said).toBe(0);
    expect(check('cron')).toMatchObject({
      level: 'warning',
      message: expect.stringContaining('could not be worked out'),
    });
    const duplicates = check('cron-duplicates');
    expect(duplicates, said).toMatchObject({ level: 'warning' });
    expect(duplicates?.message).toContain(
      `the identical line \`newsletter --env-file ${ws.path('missing.env')} send-due\``,
    );
    expect(duplicates?.message).toContain(`appears 2 times: ${cron}:2, ${cron}:3`);
    expect(duplicates?.message).toContain('cannot be read');
  });
});

describe('misspelt NEWSLETTER_* variables', () => {
  it('doctor warns with did-you-mean, for the environment and the .env file; exit 0', async () => {
    const ws = await siteWorkspace(
      `NEWSLETTER_DATABASE=${'./newsletter.db'}\nNEWSLETTER_BASEURL=https://x.example\n`,
    );
    const cron = await ws.write(
      'crontab',
      `MAILTO=ops@example.org\n* * * * * cd ${ws.dir} && newsletter send-due\n`,
    );
    const {
      result,
      check,
      describe: said,
    } = await doctor(ws, ['--crontab', cron], {
      NEWSLETTER_FORM: 'news@example.org',
    });
    expect(result.code, said).toBe(0);
    expect(result.stderr).toBe('');
    const variables = check('variables');
    expect(variables?.level).toBe('warning');
    expect(variables?.message).toContain(
      'NEWSLETTER_FORM (in the environment) is not a newsletter setting and is ignored: did you mean NEWSLETTER_FROM?',
    );
    expect(variables?.message).toContain(`NEWSLETTER_BASEURL (in ${ws.path('.env')})`);
    expect(variables?.message).toContain('did you mean NEWSLETTER_BASE_URL?');
    // The cron line reads the same .env: said once, here.
    expect(check('cron-variables')).toBeUndefined();
  });

  it("doctor also reads the crontab's assignments and the cron line's env file, which its own run may not", async () => {
    const ws = await siteWorkspace(null);
    const envFile = await ws.write('site.env', `NEWSLETTER_DATABASE=${ws.db}\nNEWSLETTER_SECERT=abc\n`);
    const cron = await ws.write(
      'crontab',
      `MAILTO=ops@example.org\nNEWSLETTER_FORM=news@example.org\n* * * * * newsletter --env-file ${envFile} send-due\n`,
    );
    const { result, check, describe: said } = await doctor(ws, ['--crontab', cron]);
    expect(result.code, said).toBe(0);
    expect(check('variables')?.level).toBe('ok');
    const fromCron = check('cron-variables');
    expect(fromCron?.level, said).toBe('warning');
    expect(fromCron?.message).toContain(
      `NEWSLETTER_FORM (in the settings above ${cron}:3) is not a newsletter setting and is ignored: did you mean NEWSLETTER_FROM?`,
    );
    expect(fromCron?.message).toContain(`NEWSLETTER_SECERT (in ${envFile})`);
    expect(fromCron?.message).toContain('did you mean NEWSLETTER_SECRET?');
  });

  it('any other command says it once on stderr and keeps its exit code; send-due under cron too', async () => {
    const ws = await siteWorkspace(null);
    const env = { NEWSLETTER_FORM: 'news@example.org' };
    const list = await ws.run(['recipients', 'list', '--lists', '--json'], { env });
    expect(list.code, describeRun(['recipients', 'list'], list)).toBe(0);
    expect(JSON.parse(list.stdout)).toEqual([]);
    const warning =
      'warning: NEWSLETTER_FORM (in the environment) is not a newsletter setting and is ignored: did you mean NEWSLETTER_FROM?\n';
    expect(list.stderr).toBe(warning);

    // Nothing due, stdout a pipe: the quiet idle path would print nothing, but this needs a person.
    const idle = await ws.run(['send-due'], { env });
    expect(idle.code, describeRun(['send-due'], idle)).toBe(0);
    expect(idle.stdout).toBe('');
    expect(idle.stderr).toBe(warning);

    // And all is well again: nothing at all.
    const quiet = await ws.run(['send-due']);
    expect([quiet.code, quiet.stdout, quiet.stderr]).toEqual([0, '', '']);
  });
});

describe('list sizes and the sending time', () => {
  it('members and reachable; doctor estimates the largest list at the rate and the hourly limit', async () => {
    const ws = await siteWorkspace(null);
    const { file, addresses } = await ws.writeCsv(30);
    await ws.ok(['recipients', 'import', file, '--list', 'readers']);
    const small = await ws.writeCsv(3, { prefix: 'few' });
    await ws.ok(['recipients', 'import', small.file, '--list', 'few']);
    await ws.ok(['recipients', 'unsubscribe', addresses[0] as string]);
    await ws.ok(['suppress', 'add', addresses[1] as string]);

    expect(await ws.json(['recipients', 'list', '--lists', '--json'])).toEqual([
      { name: 'few', members: 3, reachable: 3 },
      { name: 'readers', members: 30, reachable: 28 },
    ]);
    const text = await ws.ok(['recipients', 'list', '--lists']);
    expect(text.stdout).toMatch(/^list\s+members\s+reachable$/m);
    expect(text.stdout).toMatch(/^readers\s+30\s+28$/m);

    const cron = await ws.write(
      'crontab',
      `MAILTO=ops@example.org\n* * * * * newsletter --database ${ws.db} send-due\n`,
    );
    const atRate = await doctor(ws, ['--crontab', cron], { NEWSLETTER_RATE: '2' });
    expect(atRate.check('sending-time'), atRate.describe).toMatchObject({
      level: 'ok',
      message:
        'A newsletter to the largest list, "readers" (28 reachable), takes about 14 s at NEWSLETTER_RATE=2 (messages per second).',
    });
    // 28 at 10 an hour: two full hours held back, then 8 at 2 a second.
    const withQuota = await doctor(ws, ['--crontab', cron], {
      NEWSLETTER_RATE: '2',
      NEWSLETTER_HOURLY_LIMIT: '10',
    });
    expect(withQuota.check('sending-time')?.message, withQuota.describe).toContain(
      'takes about 2 h at NEWSLETTER_RATE=2 (messages per second) and NEWSLETTER_HOURLY_LIMIT=10 (per clock hour). The hourly limit, not the rate, sets the pace.',
    );
  });
});
