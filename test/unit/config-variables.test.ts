/**
 * Misspelt NEWSLETTER_* names: found in the environment and in the env file, each with its
 * likely intent, never an error; and said alongside the problems they may explain.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { describeUnknownVariable } from '../../src/config-variables.js';
import { ConfigError } from '../../src/domain/errors.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'newsletter-variables-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('unknown NEWSLETTER_* variables', () => {
  it('from the environment and the env file, with did-you-mean; the configuration still loads', () => {
    const envFile = path.join(dir, 'site.env');
    writeFileSync(envFile, 'NEWSLETTER_SECERT=0123456789abcdef0123\nNEWSLETTER_RATE=5\n');
    const config = loadConfig({
      cwd: dir,
      env: {
        NEWSLETTER_FORM: 'news@example.org',
        NEWSLETTER_FROM_NAME: 'x',
        PATH: '/bin',
        NEWSLETTER_FAILPOINTS: '',
      },
      envFile,
    });
    expect(config.rate).toBe(5);
    expect(config.from).toBeNull();
    expect(config.unknownVariables).toEqual([
      { name: 'NEWSLETTER_FORM', source: 'the environment', suggestion: 'NEWSLETTER_FROM' },
      { name: 'NEWSLETTER_FROM_NAME', source: 'the environment', suggestion: null },
      { name: 'NEWSLETTER_SECERT', source: envFile, suggestion: 'NEWSLETTER_SECRET' },
    ]);
    expect(describeUnknownVariable(config.unknownVariables[0]!)).toBe(
      'NEWSLETTER_FORM (in the environment) is not a newsletter setting and is ignored: did you mean NEWSLETTER_FROM?',
    );
  });

  it('none when every name is known', () => {
    expect(loadConfig({ cwd: dir, env: { NEWSLETTER_FROM: 'news@example.org' } }).unknownVariables).toEqual(
      [],
    );
  });

  it('listed after the problems of an invalid configuration, which they may explain', () => {
    let error: unknown;
    try {
      loadConfig({ cwd: dir, env: { NEWSLETTER_RATE: 'fast', NEWSLETTER_RAT: '5' } });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toContain('a problem');
    expect((error as ConfigError).details).toEqual([
      expect.stringContaining('NEWSLETTER_RATE "fast"'),
      expect.stringContaining(
        'NEWSLETTER_RAT (in the environment) is not a newsletter setting and is ignored: did you mean NEWSLETTER_RATE?',
      ),
    ]);
  });
});
