import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { normaliseAddress } from '../../src/domain/address.js';

function accepted(raw: string) {
  const result = normaliseAddress(raw);
  if (!result.ok) throw new Error(`expected ${JSON.stringify(raw)} to be accepted: ${result.problem}`);
  return result;
}

function problem(raw: string): string {
  const result = normaliseAddress(raw);
  if (result.ok) throw new Error(`expected ${JSON.stringify(raw)} to be rejected, got ${result.email}`);
  return result.problem;
}

describe('normaliseAddress: accepted forms', () => {
  it('trims, lower-cases the domain for the envelope and everything for the ledger key', () => {
    expect(accepted('  Ann.Lee+news@Example.COM \t')).toEqual({
      ok: true,
      email: 'Ann.Lee+news@example.com',
      address: 'ann.lee+news@example.com',
      smtputf8: false,
      displayName: null,
    });
  });

  it('reduces the display-name form to the address and keeps the name', () => {
    expect(accepted('Jane Doe <Jane@X.org>')).toMatchObject({
      email: 'Jane@x.org',
      address: 'jane@x.org',
      displayName: 'Jane Doe',
    });
    expect(accepted('"Doe, Jane" <j@x.org>')).toMatchObject({ email: 'j@x.org', displayName: 'Doe, Jane' });
    expect(accepted('<a@b.example>')).toMatchObject({ email: 'a@b.example', displayName: null });
  });

  it('converts an internationalised domain to punycode', () => {
    expect(accepted('info@Bücher.DE')).toMatchObject({
      email: 'info@xn--bcher-kva.de',
      address: 'info@xn--bcher-kva.de',
      smtputf8: false,
    });
    expect(accepted('a@例え.テスト').email).toBe('a@xn--r8jz45g.xn--zckzah');
  });

  it('accepts a non-ASCII local part and flags it smtputf8', () => {
    expect(accepted('Jörg@bücher.de')).toMatchObject({
      email: 'Jörg@xn--bcher-kva.de',
      address: 'jörg@xn--bcher-kva.de',
      smtputf8: true,
    });
  });

  it('puts a non-ASCII local part in NFC form, so both spellings are one recipient', () => {
    const composed = accepted('jos\u00e9@x.org');
    const decomposed = accepted('jose\u0301@x.org');
    expect(decomposed.address).toBe(composed.address);
  });

  it('accepts a quoted local part, and unquotes one that needs no quotes', () => {
    expect(accepted('"john doe"@x.org').email).toBe('"john doe"@x.org');
    expect(accepted('"a@b"@x.org').email).toBe('"a@b"@x.org');
    expect(accepted('"a,b"@x.org').email).toBe('"a,b"@x.org');
    expect(accepted('"ann"@x.org').email).toBe('ann@x.org');
  });
});

describe('normaliseAddress: rejections an operator can act on', () => {
  it.each([
    ['', /empty/],
    ['   ', /empty/],
    ['a@b.example, d@e.example', /more than one address.*','.*own row/],
    ['a@b.example; d@e.example', /more than one address.*';'/],
    ['"x" <a@b.example>, c@d.example', /more than one address/],
    ['a@b.example d@e.example', /more than one address separated by spaces/],
    ['a@b.example <d@e.example>', /more than one address/],
    ['<a@b.example> <d@e.example>', /more than one/],
    ['a@b.example;', /';'/],
    ['ann', /no '@'/],
    ['a@b@c.example', /more than one '@'/],
    ['@b.example', /nothing before the '@'/],
    ['a@', /nothing after the '@'/],
    ['a b@c.example', /white space/],
    ['a..b@c.example', /two dots in a row/],
    ['.a@c.example', /starts or ends with a dot/],
    ['a(b)@c.example', /not allowed in a local part/],
    ['a"b"@c.example', /quote the whole local part/],
    ['"ab"c@d.example', /quoted local part followed by more text/],
    ['"ab@c.example', /never closed/],
    ['John <a@b.example', /'<' that is never closed/],
    ['<a@b.example> John', /text after '>'/],
    ['Ann <>', /nothing between/],
    ['a@localhost', /without a dot/],
    ['a@b..example', /empty part/],
    ['a@b.example.', /ending with a dot/],
    ['a@-b.example', /invalid domain part "-b"/],
    ['a@b_c.example', /invalid domain part "b_c"/],
    ['a@x/y.example', /invalid domain part/],
    ['a@bü/x.example', /not allowed in a domain/],
    ['a@192.0.2.1', /looks like an IP address/],
    ['a@[192.0.2.1]', /IP address literal/],
  ])('%j is rejected', (raw, expected) => {
    expect(problem(raw)).toMatch(expected);
  });

  it('rejects CR, LF, NUL and other control characters anywhere, even at the ends', () => {
    expect(problem('a@b.example\r\nBcc: victim@c.example')).toMatch(/control character \(CR\)/);
    expect(problem('a@b.example\n')).toMatch(/control character \(LF\)/);
    expect(problem('\ra@b.example')).toMatch(/\(CR\)/);
    expect(problem('a\u0000@b.example')).toMatch(/\(NUL\)/);
    expect(problem('a\u001b@b.example')).toMatch(/U\+001B/);
    expect(problem('a\u0085@b.example')).toMatch(/U\+0085/);
    expect(problem('a@b.example\u2028')).toMatch(/U\+2028/);
  });

  it('shows the offending value with its control characters escaped', () => {
    expect(problem('a@b.example\r\nBcc: x@y.example')).toContain('"a@b.example\\r\\nBcc: x@y.example"');
  });
});

describe('normaliseAddress: invisible format characters (Unicode Cf)', () => {
  it.each([
    ['\u200bdan@example.com', 'U+200B (ZERO WIDTH SPACE) at position 1'],
    ['dan\u200c@example.com', 'U+200C (ZERO WIDTH NON-JOINER) at position 4'],
    ['dan@exa\u200dmple.com', 'U+200D (ZERO WIDTH JOINER) at position 8'],
    ['dan\u2060@example.com', 'U+2060 (WORD JOINER)'],
    ['\ufeffdan@example.com', 'U+FEFF (ZERO WIDTH NO-BREAK SPACE, the byte order mark) at position 1'],
    ['dan@example.com\ufeff', 'U+FEFF'],
    ['da\u00adn@example.com', 'U+00AD (SOFT HYPHEN) at position 3'],
    ['dan@example.com\u200e', 'U+200E (LEFT-TO-RIGHT MARK)'],
    ['\u202edan@example.com', 'U+202E (RIGHT-TO-LEFT OVERRIDE)'],
    ['"da\u200bn"@example.com', 'U+200B'],
    ['Dan <dan@example.com\u200b>', 'U+200B'],
    ['d\u{e0041}n@example.com', 'U+E0041 (a format character) at position 2'],
  ])('%j is refused, naming the character', (raw, named) => {
    const said = problem(raw);
    expect(said).toContain(`contains an invisible character ${named}`);
    expect(said).toMatch(/delete it/);
  });

  it('shows where the invisible character is in the quoted value', () => {
    expect(problem('\u200bdan@example.com')).toMatch(/^"\\u200bdan@example\.com" contains/);
    expect(problem('d\u{e0041}n@example.com')).toContain('"d\\u{e0041}n@example.com"');
  });

  it('refuses every character of category Cf, wherever it is', () => {
    const all: number[] = [];
    for (let code = 0; code <= 0x10ffff; code++) {
      if ((code < 0xd800 || code > 0xdfff) && /\p{Cf}/u.test(String.fromCodePoint(code))) all.push(code);
    }
    expect(all.length).toBeGreaterThan(150);
    fc.assert(
      fc.property(fc.constantFrom(...all), fc.nat(15), (code, at) => {
        const raw = 'dan@example.com';
        const cut = at % (raw.length + 1);
        const result = normaliseAddress(raw.slice(0, cut) + String.fromCodePoint(code) + raw.slice(cut));
        expect(result.ok).toBe(false);
        if (!result.ok) expect(result.problem).toContain('invisible character U+');
      }),
    );
  });

  it('still accepts a non-ASCII address that holds no format character', () => {
    expect(accepted('jörg@bücher.de').email).toBe('jörg@xn--bcher-kva.de');
  });
});

describe('normaliseAddress: RFC 5321 length limits', () => {
  /** A domain of exactly `length` octets made of valid labels (at most 63 each). */
  function domainOf(length: number): string {
    const labels: string[] = [];
    let left = length - '.example'.length;
    while (left > 0) {
      const size = Math.min(63, left === 64 ? 62 : left);
      labels.push('d'.repeat(size));
      left -= size + 1;
    }
    const domain = `${labels.join('.')}.example`;
    expect(domain).toHaveLength(length);
    return domain;
  }

  it('takes a local part of 64 octets and refuses 65', () => {
    expect(accepted(`${'l'.repeat(64)}@x.example`).email).toHaveLength(64 + 10);
    expect(problem(`${'l'.repeat(65)}@x.example`)).toMatch(/local part .* 65 octets; the limit is 64/);
  });

  it('counts the local part in UTF-8 octets, not characters', () => {
    expect(accepted(`${'é'.repeat(32)}@x.example`).smtputf8).toBe(true);
    expect(problem(`${'é'.repeat(33)}@x.example`)).toMatch(/66 octets; the limit is 64/);
  });

  it('refuses a domain over 255 octets', () => {
    expect(problem(`a@${domainOf(256)}`)).toMatch(/domain of 256 octets; the limit is 255/);
  });

  it('takes a whole address of 254 octets and refuses 255', () => {
    expect(accepted(`a@${domainOf(252)}`).email).toHaveLength(254);
    expect(problem(`a@${domainOf(253)}`)).toMatch(/255 octets long; the limit is 254/);
    expect(problem(`${'l'.repeat(64)}@${domainOf(190)}`)).toMatch(/255 octets long/);
  });

  it('measures the domain after punycode conversion', () => {
    // 249 characters as typed; 'bücher' becomes 'xn--bcher-kva', so 256 octets on the wire.
    const typed = `a@bücher.${domainOf(240)}`;
    expect(typed).toHaveLength(249);
    expect(problem(typed)).toMatch(/256 octets long; the limit is 254/);
  });

  it('refuses a domain label over 63 octets', () => {
    expect(accepted(`a@${'d'.repeat(63)}.example`).ok).toBe(true);
    expect(problem(`a@${'d'.repeat(64)}.example`)).toMatch(/domain part of 64 octets; the limit is 63/);
  });
});

describe('normaliseAddress: properties', () => {
  // Not starting with '-': that is refused (an option to sendmail), see small-edges.test.ts.
  const local = fc.stringMatching(
    /^[a-zA-Z0-9!#$%&'*+/=?^_`{|}~][a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]{0,19}(\.[a-zA-Z0-9_-]{1,10}){0,2}$/,
  );
  const label = fc.stringMatching(/^[a-zA-Z0-9]([a-zA-Z0-9-]{0,10}[a-zA-Z0-9])?$/);
  const domain = fc
    .tuple(fc.array(label, { minLength: 1, maxLength: 3 }), fc.stringMatching(/^[a-zA-Z]{2,6}$/))
    .map(([labels, tld]) => [...labels, tld].join('.'));
  const valid = fc.tuple(local, domain).map(([l, d]) => `${l}@${d}`);

  it('accepts ordinary addresses; the key is the lower-cased envelope form; normalising is idempotent', () => {
    fc.assert(
      fc.property(valid, (raw) => {
        const result = accepted(raw);
        expect(result.address).toBe(result.email.toLowerCase());
        expect(accepted(result.email).email).toBe(result.email);
        expect(accepted(` ${raw.toUpperCase()} `).address).toBe(result.address);
      }),
    );
  });

  it('never accepts a value holding CR or LF, wherever it is', () => {
    fc.assert(
      fc.property(valid, fc.nat(), fc.constantFrom('\r', '\n', '\r\n', '\u0000'), (raw, at, bad) => {
        const cut = at % (raw.length + 1);
        expect(normaliseAddress(raw.slice(0, cut) + bad + raw.slice(cut)).ok).toBe(false);
      }),
    );
  });

  it('never throws, and every rejection says something', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 80 }), (raw) => {
        const result = normaliseAddress(raw);
        if (!result.ok) expect(result.problem.length).toBeGreaterThan(5);
        else expect(result.email).not.toMatch(/\p{Cc}/u);
      }),
    );
  });

  it('never accepts two addresses joined by a separator', () => {
    fc.assert(
      fc.property(valid, valid, fc.constantFrom(',', ';', ' ', ', ', ' ; '), (a, b, separator) => {
        expect(problem(a + separator + b)).toMatch(/more than one address/);
      }),
    );
  });
});
