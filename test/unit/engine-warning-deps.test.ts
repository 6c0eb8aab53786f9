/**
 * On Node 20, `npm install` warns EBADENGINE for nopt and abbrev (they ask for Node 22): MJML
 * depends on js-beautify 2, which depends on nopt 10. The README says the warning is harmless
 * because only js-beautify's own command line loads them; this test keeps that true. If it
 * fails, a Node 20 install would run code that does not support Node 20: pin an MJML whose
 * js-beautify does, or raise "engines".
 */
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);

describe('the dependencies npm warns about on Node 20', () => {
  it('are never loaded when MJML compiles, beautifier included', async () => {
    const mjml = require('mjml') as (
      input: string,
      options: Record<string, unknown>,
    ) => Promise<{ html: string }>;
    const source =
      '<mjml><mj-body><mj-section><mj-column><mj-text>Hi</mj-text></mj-column></mj-section></mj-body></mjml>';
    const { html } = await mjml(source, { beautify: true, validationLevel: 'strict' });
    expect(html).toContain('Hi');

    const loaded = Object.keys(require.cache);
    expect(loaded.some((file) => file.includes('/node_modules/js-beautify/'))).toBe(true);
    expect(loaded.filter((file) => /\/node_modules\/(nopt|abbrev)\//.test(file))).toEqual([]);
  });
});
