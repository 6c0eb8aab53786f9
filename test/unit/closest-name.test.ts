/** "Did you mean": a slip of the fingers gets its suggestion, a different name gets none. */
import { describe, expect, it } from 'vitest';
import { closestName, editDistance } from '../../src/domain/closest-name.js';
import { KNOWN_VARIABLES } from '../../src/config-variables.js';

describe('editDistance', () => {
  it('counts a swap of two neighbours as one edit', () => {
    expect(editDistance('FORM', 'FROM')).toBe(1);
    expect(editDistance('RATE', 'RATE')).toBe(0);
    expect(editDistance('', 'ABC')).toBe(3);
    expect(editDistance('SECERT', 'SECRET')).toBe(1);
  });
});

describe('closestName among the NEWSLETTER_* variables', () => {
  it.each([
    ['NEWSLETTER_FORM', 'NEWSLETTER_FROM'],
    ['NEWSLETTER_SECERT', 'NEWSLETTER_SECRET'],
    ['NEWSLETTER_BASEURL', 'NEWSLETTER_BASE_URL'],
    ['NEWSLETTER_HOURLY_LIMT', 'NEWSLETTER_HOURLY_LIMIT'],
    ['newsletter_from', 'NEWSLETTER_FROM'],
    ['NEWSLETTER_SMTP_TIMEOUTS', 'NEWSLETTER_SMTP_TIMEOUT'],
  ])('%s → %s', (typed, expected) => {
    expect(closestName(typed, KNOWN_VARIABLES, 'NEWSLETTER_')).toBe(expected);
  });

  it('suggests nothing for a name that is something else', () => {
    expect(closestName('NEWSLETTER_COLOUR_SCHEME', KNOWN_VARIABLES, 'NEWSLETTER_')).toBeNull();
    expect(closestName('NEWSLETTER_X', KNOWN_VARIABLES, 'NEWSLETTER_')).toBeNull();
  });
});
