/**
 * One rule for where a setting comes from (flag, then environment, then env file, then the
 * default), and the configuration and `doctor` both follow it: otherwise doctor would check a
 * database that the crontab line it read never touches.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { parseCrontab, resolveDatabase } from '../../src/doctor/crontab.js';
import { describeDatabase } from '../../src/domain/database-location.js';
import { type SettingSources, settingOf } from '../../src/domain/setting-precedence.js';

const NAME = 'NEWSLETTER_DATABASE';

function sources(layers: {
  file?: Record<string, string>;
  env?: Record<string, string | undefined>;
  flag?: string;
}): SettingSources & { fileReads: () => number } {
  let reads = 0;
  return {
    envFile: () => {
      reads += 1;
      return layers.file ?? null;
    },
    environment: layers.env ?? {},
    flags: { [NAME]: layers.flag },
    fileReads: () => reads,
  };
}

describe('settingOf', () => {
  it('a flag wins over the environment, which wins over the env file', () => {
    const file = { [NAME]: 'file.db' };
    const env = { [NAME]: 'env.db' };
    expect(settingOf(sources({ file, env, flag: 'flag.db' }), NAME)).toBe('flag.db');
    expect(settingOf(sources({ file, env }), NAME)).toBe('env.db');
    expect(settingOf(sources({ file }), NAME)).toBe('file.db');
    expect(settingOf(sources({}), NAME)).toBeNull();
  });

  it('trims; empty means unset, and a variable set to nothing in the environment hides the file', () => {
    expect(settingOf(sources({ env: { [NAME]: '  env.db ' } }), NAME)).toBe('env.db');
    expect(settingOf(sources({ file: { [NAME]: 'file.db' }, flag: '' }), NAME)).toBe('file.db');
    expect(settingOf(sources({ file: { [NAME]: 'file.db' }, env: { [NAME]: '' } }), NAME)).toBeNull();
  });

  it('reads the env file only when neither a flag nor the environment sets the variable', () => {
    const set = sources({ env: { [NAME]: 'env.db' } });
    settingOf(set, NAME);
    expect(set.fileReads()).toBe(0);
    const unset = sources({});
    settingOf(unset, NAME);
    expect(unset.fileReads()).toBe(1);
  });
});

describe('describeDatabase', () => {
  it('shows a SQLite path as it is and a PostgreSQL URL without its password', () => {
    expect(describeDatabase({ kind: 'sqlite', path: '/var/lib/news.db' })).toBe('/var/lib/news.db');
    expect(describeDatabase({ kind: 'postgres', url: 'postgres://news:s3cret@db.internal/news' })).toBe(
      'postgres://news:***@db.internal/news',
    );
    expect(describeDatabase({ kind: 'postgres', url: 'postgres://[bad' })).toBe('postgres://…');
  });
});

describe('the configuration and doctor decide alike', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'newsletter-precedence-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const envFile = path.join(dir, 'site.env');
  writeFileSync(envFile, 'NEWSLETTER_DATABASE=from-file.db\n');

  const cases: { name: string; env: Record<string, string>; flags: string[] }[] = [
    { name: 'the env file alone', env: {}, flags: [] },
    { name: 'the environment over the env file', env: { [NAME]: 'from-env.db' }, flags: [] },
    { name: 'set to nothing in the environment', env: { [NAME]: '' }, flags: [] },
    { name: 'the flag over both', env: { [NAME]: 'from-env.db' }, flags: ['--database', 'from-flag.db'] },
  ];
  for (const { name, env, flags } of cases) {
    it(name, () => {
      const config = loadConfig({
        cwd: dir,
        env,
        envFile,
        overrides: { database: flags[1] },
      });
      const assignments = Object.entries(env).map(([key, value]) => `${key}=${value}`);
      const line = `* * * * * cd ${dir} && ${[...assignments, 'newsletter', '--env-file', envFile, ...flags, 'send-due'].join(' ')}`;
      const [entry] = parseCrontab(line, 'user', 'test');
      const resolved = resolveDatabase(entry!, {
        homeOf: () => null,
        readFile: () => 'NEWSLETTER_DATABASE=from-file.db\n',
      });
      expect(resolved.database).toBe(describeDatabase(config.database));
    });
  }
});
