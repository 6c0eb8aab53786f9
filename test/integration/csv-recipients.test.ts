import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/domain/errors.js';
import { parseColumnMap } from '../../src/import/csv-header.js';
import { type CsvRecipientEvent, readRecipientsCsv } from '../../src/import/csv-recipients.js';

let dir: string;
let counter = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'newsletter-csv-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function file(content: string | Buffer): Promise<string> {
  const path = join(dir, `recipients-${++counter}.csv`);
  await writeFile(path, content);
  return path;
}

async function events(
  path: string,
  options: { maxErrors?: number; map?: ReadonlyMap<string, string> } = {},
): Promise<CsvRecipientEvent[]> {
  const all: CsvRecipientEvent[] = [];
  for await (const event of readRecipientsCsv(path, options)) all.push(event);
  return all;
}

async function failure(
  path: string,
  options: { maxErrors?: number; map?: ReadonlyMap<string, string> } = {},
): Promise<InputError> {
  try {
    await events(path, options);
  } catch (error) {
    expect(error).toBeInstanceOf(InputError);
    return error as InputError;
  }
  throw new Error(`expected ${path} to be refused`);
}

/** The events after the header, in a form easy to compare. */
function summary(all: CsvRecipientEvent[]): string[] {
  return all.flatMap((event) => {
    if (event.kind === 'row') return [`${event.line} row ${event.email}`];
    if (event.kind === 'invalid') return [`${event.line} invalid`];
    if (event.kind === 'duplicate') return [`${event.line} duplicate of ${event.firstLine} ${event.address}`];
    return [];
  });
}

describe('readRecipientsCsv: rows', () => {
  it('reads the header, then one event per row, with name and fields', async () => {
    const path = await file(
      'Email, Name ,City,first_name\nann@example.org,Ann Lee,Oslo,Ann\nbob@example.org,,Bergen,Bob\n',
    );
    expect(await events(path)).toEqual([
      { kind: 'header', fields: ['city', 'first_name'] },
      {
        kind: 'row',
        line: 2,
        email: 'ann@example.org',
        address: 'ann@example.org',
        name: 'Ann Lee',
        fields: { city: 'Oslo', first_name: 'Ann' },
        smtputf8: false,
      },
      {
        kind: 'row',
        line: 3,
        email: 'bob@example.org',
        address: 'bob@example.org',
        name: '',
        fields: { city: 'Bergen', first_name: 'Bob' },
        smtputf8: false,
      },
    ]);
  });

  it('works without a name column, and with email as the only column', async () => {
    const all = await events(await file('email\na@example.org\n'));
    expect(all).toEqual([
      { kind: 'header', fields: [] },
      expect.objectContaining({ kind: 'row', line: 2, name: '', fields: {} }),
    ]);
  });

  it('reports invalid addresses with their line numbers and goes on', async () => {
    const path = await file(
      'email,name\ngood@example.org,A\nnot-an-address,B\n,C\nalso@localhost,D\nfine@example.org,E\n',
    );
    const all = await events(path);
    expect(summary(all)).toEqual([
      '2 row good@example.org',
      '3 invalid',
      '4 invalid',
      '5 invalid',
      '6 row fine@example.org',
    ]);
    expect(all[2]).toMatchObject({ problem: expect.stringMatching(/no '@'/) });
    expect(all[3]).toMatchObject({ problem: expect.stringMatching(/empty/) });
    expect(all[4]).toMatchObject({ problem: expect.stringMatching(/without a dot/) });
  });

  it('makes a cell holding two addresses an invalid row, not a crash', async () => {
    const path = await file(
      'email,name\n"a@example.org, b@example.org",Two\n"""x"" <c@example.org>; d@example.org",Two\nok@example.org,One\n',
    );
    const all = await events(path);
    expect(summary(all)).toEqual(['2 invalid', '3 invalid', '4 row ok@example.org']);
    expect(all[1]).toMatchObject({ problem: expect.stringMatching(/more than one address/) });
  });

  it('reports a second row for the same address as a duplicate, whatever its case', async () => {
    const path = await file(
      'email,name\nAnn@Example.org,Ann\nbob@example.org,Bob\nann@EXAMPLE.ORG,Ann again\n ANN@example.org ,Ann thrice\n',
    );
    expect(summary(await events(path))).toEqual([
      '2 row Ann@example.org',
      '3 row bob@example.org',
      '4 duplicate of 2 ann@example.org',
      '5 duplicate of 2 ann@example.org',
    ]);
  });

  it('does not let an invalid row claim an address', async () => {
    const path = await file('email\nbad address@example.org\nbad@example.org\n');
    expect(summary(await events(path))).toEqual(['2 invalid', '3 row bad@example.org']);
  });

  it('converts an IDN domain to punycode and flags a non-ASCII local part', async () => {
    const all = await events(await file('email\ninfo@Bücher.de\njörg@bücher.de\n'));
    expect(all[1]).toMatchObject({ email: 'info@xn--bcher-kva.de', smtputf8: false });
    expect(all[2]).toMatchObject({ email: 'jörg@xn--bcher-kva.de', smtputf8: true });
  });

  it('takes the display-name form, and its name when the name cell is empty', async () => {
    const path = await file(
      'email,name\nAnn Lee <ann@example.org>,\n"""Lee, Bob"" <bob@example.org>",Robert\n',
    );
    const all = await events(path);
    expect(all[1]).toMatchObject({ email: 'ann@example.org', name: 'Ann Lee' });
    expect(all[2]).toMatchObject({ email: 'bob@example.org', name: 'Robert' });
  });

  it('rejects a CR or LF smuggled into a quoted address cell', async () => {
    const path = await file('email,name\n"a@example.org\r\nBcc: victim@example.net",X\nok@example.org,Y\n');
    const all = await events(path);
    expect(summary(all)).toEqual(['2 invalid', '4 row ok@example.org']);
    expect(all[1]).toMatchObject({ problem: expect.stringMatching(/control character \(CR\)/) });
  });

  it('applies the RFC 5321 length limits', async () => {
    const domain = `${'d'.repeat(63)}.${'d'.repeat(63)}.${'d'.repeat(63)}.${'d'.repeat(56)}.org`;
    const path = await file(
      [
        'email',
        `${'l'.repeat(64)}@example.org`,
        `${'l'.repeat(65)}@example.org`,
        `a@${domain}`,
        `ab@${domain}`,
      ].join('\n'),
    );
    const all = await events(path);
    expect(summary(all)).toEqual([
      `2 row ${'l'.repeat(64)}@example.org`,
      '3 invalid',
      `4 row a@${domain}`,
      '5 invalid',
    ]);
    expect(all[2]).toMatchObject({ problem: expect.stringMatching(/the limit is 64/) });
    expect(all[4]).toMatchObject({ problem: expect.stringMatching(/255 octets long; the limit is 254/) });
  });

  it('collapses line breaks in a name but keeps them in a field', async () => {
    const all = await events(await file('email,name,address\na@example.org,"Ann\nLee","1 Main St\nOslo"\n'));
    expect(all[1]).toMatchObject({ name: 'Ann Lee', fields: { address: '1 Main St\nOslo' } });
  });
});

describe('readRecipientsCsv: invisible characters', () => {
  it('reports an address holding a zero width space or a BOM as invalid, with its line', async () => {
    // The file's own BOM is skipped by the parser; the ones inside cells are the address's problem.
    const path = await file(
      Buffer.concat([
        Buffer.from([0xef, 0xbb, 0xbf]),
        Buffer.from(
          'email,name\ndan@example.com,Dan\n\u200bdan@example.com,Dan again\nann@example.org,Ann\n' +
            '\ufeffbob@example.org,Bob\n"cat\u2060@example.org",Cat\n',
        ),
      ]),
    );
    const all = await events(path);
    expect(summary(all)).toEqual([
      '2 row dan@example.com',
      '3 invalid',
      '4 row ann@example.org',
      '5 invalid',
      '6 invalid',
    ]);
    expect(all[2]).toMatchObject({
      problem: expect.stringContaining('invisible character U+200B (ZERO WIDTH SPACE)'),
    });
    expect(all[4]).toMatchObject({ problem: expect.stringContaining('U+FEFF') });
    expect(all[5]).toMatchObject({ problem: expect.stringContaining('U+2060 (WORD JOINER)') });
  });
});

describe('readRecipientsCsv: CSV dialects and line numbers', () => {
  it('skips a UTF-8 BOM', async () => {
    const path = await file(
      Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('email,name\na@example.org,A\n')]),
    );
    expect(summary(await events(path))).toEqual(['2 row a@example.org']);
  });

  it('reads CRLF line ends without leaving a CR in the last column', async () => {
    const path = await file('email,name,city\r\na@example.org,A,Oslo\r\nb@example.org,B,Bergen\r\n');
    const all = await events(path);
    expect(summary(all)).toEqual(['2 row a@example.org', '3 row b@example.org']);
    expect(all[2]).toMatchObject({ fields: { city: 'Bergen' } });
  });

  it('keeps quoted commas and quoted newlines, and counts lines right after them', async () => {
    const path = await file(
      [
        'email,name,note',
        'a@example.org,"Lee, Ann","one, two"',
        'b@example.org,Bob,"first line',
        'second line',
        'third line"',
        'c@example.org,Cy,plain',
        '"d@example.org","Dee ""The Quote""",x',
        '',
      ].join('\n'),
    );
    const all = await events(path);
    expect(summary(all)).toEqual([
      '2 row a@example.org',
      '3 row b@example.org',
      '6 row c@example.org',
      '7 row d@example.org',
    ]);
    expect(all[1]).toMatchObject({ name: 'Lee, Ann', fields: { note: 'one, two' } });
    expect(all[2]).toMatchObject({ fields: { note: 'first line\nsecond line\nthird line' } });
    expect(all[4]).toMatchObject({ name: 'Dee "The Quote"' });
  });

  it('counts a CRLF inside a quoted value as one line', async () => {
    const path = await file('email,note\r\na@example.org,"x\r\ny\r\nz"\r\nb@example.org,n\r\nnope,n\r\n');
    expect(summary(await events(path))).toEqual(['2 row a@example.org', '5 row b@example.org', '6 invalid']);
  });

  it('skips blank lines and all-blank rows, and still counts them', async () => {
    const path = await file('\nemail,name\n\na@example.org,A\n\n\n,\n , \nb@example.org,B\n\n');
    expect(summary(await events(path))).toEqual(['4 row a@example.org', '9 row b@example.org']);
  });

  it('reads a header-only file as zero rows', async () => {
    expect(await events(await file('email,name,city\n'))).toEqual([{ kind: 'header', fields: ['city'] }]);
    expect(await events(await file('email,name'))).toEqual([{ kind: 'header', fields: [] }]);
  });
});

describe('readRecipientsCsv: files it refuses', () => {
  it('refuses an empty file', async () => {
    const path = await file('');
    const error = await failure(path);
    expect(error.message).toContain(path);
    expect(error.message).toMatch(/line 1: the file is empty.*header row such as "email,name"/);
    expect((await failure(await file('\n\r\n\n'))).message).toMatch(/empty/);
  });

  it('refuses a header without an email column, listing the columns it found, with one fix', async () => {
    const path = await file('Name,Address,Phone\nAnn,a@example.org,1\n');
    const error = await failure(path);
    expect(error.message).toContain(`${path}, line 1`);
    expect(error.message).toMatch(/no email column \(columns found: "Name", "Address", "Phone"\)/);
    expect(error.message).toMatch(/--map "COLUMN=email"/);
    expect(error.details).toEqual([]);
  });

  it('imports a Mailchimp export as it is: "Email Address", "First Name", "Last Name"', async () => {
    const all = await events(
      await file('"Email Address","First Name","Last Name",MEMBER_RATING\nann@example.org,Ann,Lee,2\n'),
    );
    expect(all[0]).toEqual({ kind: 'header', fields: ['first_name', 'last_name', 'member_rating'] });
    expect(all[1]).toMatchObject({
      kind: 'row',
      email: 'ann@example.org',
      fields: { first_name: 'Ann', last_name: 'Lee', member_rating: '2' },
    });
  });

  it('takes E-mail, E-Mail and mail as the address column', async () => {
    for (const header of ['E-mail', 'E-Mail', 'mail', 'EMAIL', ' Email Address ']) {
      const all = await events(await file(`${header},name\na@example.org,A\n`));
      expect(all[1]).toMatchObject({ kind: 'row', email: 'a@example.org', name: 'A' });
    }
  });

  it('names fields by their header lower-cased, spaces and punctuation as _', async () => {
    const all = await events(await file('email,First Name,FirstName,Prénom,2nd,Zip/Post code.\n'));
    expect(all[0]).toEqual({
      kind: 'header',
      fields: ['first_name', 'firstname', 'prenom', '_2nd', 'zip_post_code'],
    });
  });

  it('renames columns with map, whatever their case', async () => {
    const map = parseColumnMap(['Courriel=email', 'nom = name', 'Ville=City']);
    const path = await file('Courriel,Nom,ville\na@example.org,Ann,Paris\n');
    const all: CsvRecipientEvent[] = [];
    for await (const event of readRecipientsCsv(path, { map })) all.push(event);
    expect(all[0]).toEqual({ kind: 'header', fields: ['city'] });
    expect(all[1]).toMatchObject({ email: 'a@example.org', name: 'Ann', fields: { city: 'Paris' } });
    expect(() => parseColumnMap(['Courriel'])).toThrow(/COLUMN=NAME/);
    const typo = await failure(path, { map: parseColumnMap(['Couriel=email']) });
    expect(typo.details).toEqual([
      expect.stringMatching(/--map names a column "couriel" that the header does not have/),
    ]);
  });

  it('refuses columns that make the same field, saying each problem once', async () => {
    const error = await failure(await file('email,City,city,First Name,first_name\n'));
    expect(error.message).toMatch(
      /column 3 "city" is the field "city", as column 2 "City" is.*and 1 more problem\)/,
    );
    expect(error.details).toEqual([
      expect.stringMatching(/column 5 "first_name" is the field "first_name", as column 4 "First Name" is/),
    ]);
    expect((await failure(await file('email,EMAIL\n'))).message).toMatch(/as column 1 "email" is/);
    expect((await failure(await file('email,#\n'))).message).toMatch(/column 2 "#" gives no field name/);
  });

  it('refuses an empty column name and the reserved unsubscribe_url', async () => {
    expect((await failure(await file('email,name,\n'))).message).toMatch(
      /column 3 of the header has no name/,
    );
    expect((await failure(await file('email,unsubscribe_url\n'))).message).toMatch(/reserved/);
  });

  it('says so when the file uses semicolons between columns', async () => {
    const error = await failure(await file('email;name\na@example.org;A\n'));
    expect(error.message).toMatch(/seems to use ';' between columns; save it as comma-separated CSV/);
  });

  it('reports an unclosed quote at the line where the row starts', async () => {
    const path = await file(
      'email,name\na@example.org,A\nb@example.org,"Bob\nc@example.org,C\nd@example.org,D\n',
    );
    const error = await failure(path);
    expect(error.message).toContain(`${path}, line 3:`);
    expect(error.message).toMatch(/never closed/);
  });

  it('reports a row with the wrong number of values at its line', async () => {
    const path = await file('email,name\na@example.org,A\n\nb@example.org,Lee, Bob\n');
    const error = await failure(path);
    expect(error.message).toContain(`${path}, line 4: this row has 3 values but the header has 2 columns`);
    expect(error.message).toMatch(/quote values that contain commas/);
  });

  it('reports a stray quote inside a value', async () => {
    const error = await failure(await file('email,name\na@example.org,"Ann" Lee\n'));
    expect(error.message).toMatch(/line 2: .*'""'/);
  });

  it('refuses text that is not UTF-8', async () => {
    const path = await file(Buffer.from('email,name\na@example.org,Ren\xe9\n', 'latin1'));
    expect((await failure(path)).message).toMatch(
      /line 2: the text is not valid UTF-8; save the file as "CSV UTF-8"/,
    );
  });

  it('refuses a missing file and a directory', async () => {
    const missing = join(dir, 'nope.csv');
    expect((await failure(missing)).message).toBe(`${missing}: no such file; check the path`);
    const folder = join(dir, 'a-folder');
    await mkdir(folder);
    expect((await failure(folder)).message).toMatch(/is a directory/);
  });

  it('stops after more invalid rows than maxErrors', async () => {
    const path = await file('email\nx\ny\nok@example.org\nz\nw\n');
    expect(summary(await events(path, { maxErrors: 4 }))).toHaveLength(5);
    const error = await failure(path, { maxErrors: 2 });
    expect(error.message).toMatch(/line 5: more than 2 invalid rows, the last: "z" has no '@'/);
    expect((await failure(path, { maxErrors: 0 })).message).toMatch(/line 2: more than 0 invalid rows/);
  });
});

describe('readRecipientsCsv: resources', () => {
  it('closes the file when the reader stops early', async () => {
    // Larger than the read stream's buffer, so that an unclosed reader would stay open.
    const path = await file(
      `email\n${Array.from({ length: 50_000 }, (_, i) => `u${i}@example.org`).join('\n')}\n`,
    );
    const openFiles = async () => (await readdir('/proc/self/fd')).length;
    const before = await openFiles();
    for (let i = 0; i < 20; i++) {
      for await (const event of readRecipientsCsv(path)) {
        if (event.kind === 'row') break;
      }
    }
    // Closing finishes on the thread pool: give the event loop turns (not a timer) until it has.
    for (let turn = 0; turn < 1000 && (await openFiles()) > before; turn++) {
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(await openFiles()).toBeLessThanOrEqual(before);
  });

  it('streams 200,000 rows without holding the file in memory', async () => {
    const path = join(dir, 'big.csv');
    const out = createWriteStream(path);
    out.write('email,name,note\n');
    const note = 'n'.repeat(600);
    for (let i = 0; i < 200_000; i += 1000) {
      let chunk = '';
      for (let j = i; j < i + 1000; j++) chunk += `User${j}@Example${j % 997}.com,Name ${j},${note}\n`;
      if (!out.write(chunk)) await once(out, 'drain');
    }
    out.end();
    await once(out, 'finish');
    const size = (await stat(path)).size;
    expect(size).toBeGreaterThan(120_000_000);

    const baseline = process.memoryUsage().heapUsed;
    let peak = 0;
    let rows = 0;
    let last: CsvRecipientEvent | undefined;
    for await (const event of readRecipientsCsv(path)) {
      if (event.kind !== 'row' && event.kind !== 'header') throw new Error(`unexpected ${event.kind}`);
      if (event.kind === 'row' && ++rows % 1000 === 0) {
        peak = Math.max(peak, process.memoryUsage().heapUsed - baseline);
      }
      last = event;
    }
    expect(rows).toBe(200_000);
    expect(last).toMatchObject({ line: 200_001, address: 'user199999@example599.com' });
    // About 50 MB in practice (the addresses seen, and garbage not yet collected); reading the file
    // whole would cost more than twice its size. The bound is the size of the file itself.
    expect(peak).toBeLessThan(size);
    await rm(path);
  });
});
