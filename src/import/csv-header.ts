/**
 * The header row of a recipients CSV: which column holds the address, which the name, and which
 * become merge fields. Column names are trimmed and compared lower-cased; every problem is
 * reported at once, each with what to change.
 */
export interface CsvHeader {
  emailIndex: number;
  /** -1 when the file has no `name` column. */
  nameIndex: number;
  /** Every other column, in file order, by its lower-cased name. */
  fields: { name: string; index: number }[];
}

export type HeaderResult = { ok: true; header: CsvHeader } | { ok: false; problems: string[] };

export const FIELD_NAME = /^[a-z_][a-z0-9_]*$/;

/**
 * Names a column may not take: `unsubscribe_url` is a merge field the renderer fills in itself, and
 * `__proto__` would vanish when assigned as an object key.
 */
const RESERVED = new Map([
  ['unsubscribe_url', 'it is filled in for every recipient by newsletter itself'],
  ['__proto__', 'it cannot be used as a field name'],
]);

/** Names people give the address column; we accept only `email`, and say so. */
const EMAIL_LOOKALIKES = new Set(['e-mail', 'e_mail', 'mail', 'email address', 'email_address', 'emails']);

export function parseHeader(cells: readonly string[]): HeaderResult {
  const shown = cells.map((cell) => cell.trim());
  const names = shown.map((cell) => cell.toLowerCase());

  // A file saved with ';' or tabs between columns reads as a single column; say that, not
  // "no email column".
  const only = shown[0] ?? '';
  if (shown.length === 1) {
    const separator = only.includes(';') ? "';'" : only.includes('\t') ? 'tabs' : null;
    if (separator !== null) {
      return {
        ok: false,
        problems: [
          `the header ${JSON.stringify(only)} is one column: the file seems to use ${separator} between ` +
            'columns; save it as comma-separated CSV',
        ],
      };
    }
  }

  const problems: string[] = [];
  const firstAt = new Map<string, number>();
  let emailIndex = -1;
  let nameIndex = -1;
  const fields: { name: string; index: number }[] = [];

  names.forEach((name, index) => {
    const column = `column ${index + 1}`;
    if (name === '') {
      problems.push(`${column} of the header has no name; name it, or remove the column (a trailing comma?)`);
      return;
    }
    const earlier = firstAt.get(name);
    if (earlier !== undefined) {
      problems.push(
        `${column} ${JSON.stringify(shown[index])} repeats column ${earlier + 1}; column names must be unique ` +
          '(case does not count)',
      );
      return;
    }
    firstAt.set(name, index);
    if (name === 'email') {
      emailIndex = index;
    } else if (name === 'name') {
      nameIndex = index;
    } else if (RESERVED.has(name)) {
      problems.push(
        `${column} ${JSON.stringify(shown[index])} is reserved (${RESERVED.get(name)}); rename it`,
      );
    } else if (!FIELD_NAME.test(name)) {
      problems.push(
        `${column} ${JSON.stringify(shown[index])} is not a valid field name (letters, digits and '_', not ` +
          `starting with a digit); rename it, e.g. to ${JSON.stringify(suggestFieldName(name, index))}`,
      );
    } else {
      fields.push({ name, index });
    }
  });

  if (emailIndex === -1) {
    const lookalike = shown.find((cell) => EMAIL_LOOKALIKES.has(cell.toLowerCase()));
    const found = shown.length > 0 ? shown.map((cell) => JSON.stringify(cell)).join(', ') : 'none';
    problems.unshift(
      `there is no "email" column (columns found: ${found}); ` +
        (lookalike === undefined
          ? 'add a header row such as "email,name" or rename the column holding the addresses to "email"'
          : `rename ${JSON.stringify(lookalike)} to "email"`),
    );
  }

  return problems.length > 0
    ? { ok: false, problems }
    : { ok: true, header: { emailIndex, nameIndex, fields } };
}

/** `First Name` → `first_name`, `Prénom` → `prenom`, `2nd line` → `_2nd_line`. */
export function suggestFieldName(name: string, index: number): string {
  const plain = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/gu, '')
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, '_')
    .replace(/^_+|_+$/g, '');
  if (plain === '') return `field_${index + 1}`;
  return /^[0-9]/.test(plain) ? `_${plain}` : plain;
}
