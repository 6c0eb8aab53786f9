/** Every spelling of a secret is masked (issue 13, section 7): raw, percent-encoded, JSON, base64. */
import { describe, expect, it } from 'vitest';
import { maskSecrets, secretForms } from '../../src/domain/secret-forms.js';
import { redactSecrets } from '../../src/domain/outcome.js';

const PASSWORD = 'Pg@Pass/wörd"x\\y';

const encodings = (user: string, password: string): Record<string, string> => ({
  raw: password,
  'percent-encoded': encodeURIComponent(password),
  'percent-encoded, lower-case hex': encodeURIComponent(password).replace(/%[0-9A-F]{2}/g, (h) =>
    h.toLowerCase(),
  ),
  'as a URL writes it': new URL(`postgres://${user}:${encodeURIComponent(password)}@h/db`).password,
  'JSON-escaped': JSON.stringify(password).slice(1, -1),
  base64: Buffer.from(password).toString('base64'),
  'AUTH PLAIN': Buffer.from(`\0${user}\0${password}`).toString('base64'),
  'AUTH PLAIN with an authzid': Buffer.from(`${user}\0${user}\0${password}`).toString('base64'),
});

describe('secretForms', () => {
  for (const user of ['u', 'us', 'use', 'newsletter']) {
    it(`masks each encoding, whatever the alignment (user "${user}")`, () => {
      const forms = secretForms(PASSWORD);
      for (const [name, value] of Object.entries(encodings(user, PASSWORD))) {
        const masked = maskSecrets(`before ${value} after`, forms);
        expect(masked, name).toContain('***');
        expect(masked.includes(value), name).toBe(false);
        // Nothing long enough to rebuild the secret is left of it.
        expect(masked.replace(/^before |after$/g, '').length, name).toBeLessThan(value.length);
      }
    });
  }

  it('keeps ordinary text and ignores empty secrets', () => {
    expect(maskSecrets('nothing here', secretForms(PASSWORD))).toBe('nothing here');
    expect(secretForms('')).toEqual([]);
  });

  it('redactSecrets (the ledger and log path) masks AUTH PLAIN inside a longer reply too', () => {
    const plain = Buffer.from(`\0newsletter\0${PASSWORD}`).toString('base64');
    expect(redactSecrets(`535 rejected ${plain} (token)`, [PASSWORD])).not.toContain(plain.slice(8, 20));
  });
});
