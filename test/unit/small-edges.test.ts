/**
 * Issue 13's smaller edges, at the unit level: an address that sendmail would read as an option,
 * a From that is no address, a merge field after white space at the start of an href, and a
 * client that hangs up (told apart from a failure of ours). The built CLI is exercised in
 * test/e2e/small-edges.test.ts.
 */
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { normaliseAddress } from '../../src/domain/address.js';
import { fromAddressProblem } from '../../src/domain/from-address.js';
import { escapeHtml, renderSplit, splitTemplate } from '../../src/render/fields.js';
import { isClientAbort } from '../../src/server/client-abort.js';

describe('an address starting with "-"', () => {
  it.each([
    '-oQ/tmp/x@example.org',
    '-X/tmp/log@example.org',
    ' -f@example.org',
    'Eve <-bi@example.org>',
    // Needs no quotes, so it is unquoted to -x@… like any other: refused after unquoting.
    '"-x"@example.org',
  ])('%j is refused, saying why', (raw) => {
    const result = normaliseAddress(raw);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problem).toMatch(/starts with '-'.*option/);
  });

  it('a hyphen inside the local part is an ordinary character', () => {
    expect(normaliseAddress('mary-jane@example.org')).toMatchObject({
      ok: true,
      email: 'mary-jane@example.org',
    });
  });
});

describe('fromAddressProblem', () => {
  it.each([
    ['@', /nothing before the '@'/],
    ['nonsense@', /nothing after the '@'/],
    ['News <news@>', /nothing after the '@'/],
    ['news.example.org', /no '@'/],
    ['-f@example.org', /starts with '-'/],
  ])('%j is refused, naming the setting and the fix', (value, problem) => {
    const text = fromAddressProblem('--from', value);
    expect(text).toMatch(/^--from is not a usable address: /);
    expect(text).toMatch(problem);
    expect(text).toContain('News <news@example.org>');
  });

  it.each(['news@example.org', 'Example News <news@example.org>', '"Doe, Jane" <jane@example.org>'])(
    '%j is accepted',
    (value) => {
      expect(fromAddressProblem('NEWSLETTER_FROM', value)).toBeNull();
    },
  );
});

describe('a merge field after what a browser skips at the start of a URL', () => {
  const hostile = { website: 'javascript:alert(document.cookie)' };

  it.each([
    '<a href=" {{website}}">x</a>',
    '<a href="  \t{{website}}">x</a>',
    '<a href="\n{{website}}">x</a>',
    '<a href="&#32;{{website}}">x</a>',
    '<a href="&#x09;&NewLine;{{website}}">x</a>',
    '<img src=" {{website}}">',
    '<a href= {{website}}>x</a>',
  ])('%j is neutralised', (template) => {
    const split = splitTemplate(template);
    expect(split.fields[0]?.urlStart).toBe(true);
    const html = renderSplit(split, hostile, escapeHtml);
    expect(html).toContain('unsafe:javascript:');
  });

  it('a field after other text in the URL is not the scheme and is left alone', () => {
    const split = splitTemplate('<a href="https://example.org/?q={{website}}">x</a>');
    expect(split.fields[0]?.urlStart).toBe(false);
  });

  it('an ordinary link after a leading space still works', () => {
    const html = renderSplit(
      splitTemplate('<a href=" {{website}}">x</a>'),
      { website: 'https://ok.example' },
      escapeHtml,
    );
    expect(html).toBe('<a href=" https://ok.example">x</a>');
  });
});

describe('isClientAbort', () => {
  const request = (destroyed: boolean) =>
    ({ destroyed, socket: { destroyed } }) as unknown as IncomingMessage;
  const reset = Object.assign(new Error('aborted'), { code: 'ECONNRESET' });

  it('a reset from a client that is gone is the client hanging up', () => {
    expect(isClientAbort(reset, request(true))).toBe(true);
  });

  it('a reset while the client is still connected is ours (a database connection, say)', () => {
    expect(isClientAbort(reset, request(false))).toBe(false);
  });

  it('any other error is ours, even when the client has gone', () => {
    expect(isClientAbort(new Error('SQLITE_CORRUPT: database disk image is malformed'), request(true))).toBe(
      false,
    );
  });
});
