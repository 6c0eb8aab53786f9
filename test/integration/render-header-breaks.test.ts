/**
 * A subject or From that reached the database without `create` (another program writing to a
 * shared PostgreSQL database, an old row): the build refuses CR, LF, NUL and the Unicode line and
 * paragraph separators before anything can be sent. `create` refuses them first
 * (test/e2e/hardening.test.ts); NUL cannot even be passed as a command-line argument.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BuildError } from '../../src/domain/errors.js';
import type { Newsletter } from '../../src/domain/types.js';
import { buildBody } from '../../src/render/build.js';
import { TEMPLATES } from '../helpers/cli.js';
import { newsletterFixture } from '../helpers/store-fixtures.js';

function newsletter(overrides: Partial<Newsletter>): Newsletter {
  return newsletterFixture({
    templatePath: path.join(TEMPLATES, 'welcome.mjml'),
    from: 'News <news@example.org>',
    ...overrides,
  });
}

const context = { templatesRoot: TEMPLATES, knownFields: [], defaultFrom: null };

describe('header values at build time', () => {
  for (const [name, char] of [
    ['CR', '\r'],
    ['LF', '\n'],
    ['NUL', '\0'],
    ['U+2028', '\u2028'],
    ['U+2029', '\u2029'],
  ] as const) {
    it(`refuses ${name} in the subject and in the From`, async () => {
      const error = await buildBody(
        newsletter({ subject: `Hello${char}Bcc: x@example.org`, from: `News${char} <news@example.org>` }),
        context,
      ).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BuildError);
      expect((error as BuildError).details).toEqual([
        'the From address contains a line break or NUL',
        'the subject contains a line break or NUL',
      ]);
    });
  }

  it('builds the same newsletter without them', async () => {
    await expect(buildBody(newsletter({}), context)).resolves.toMatchObject({ subject: 'Hello' });
  });
});
