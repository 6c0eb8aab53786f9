import { InputError } from '../domain/errors.js';

/**
 * The header row of a recipients CSV: which column holds the address, which the name, and which
 * become merge fields. A column's field name is its header lower-cased, with runs of spaces and
 * punctuation turned into `_` ("First Name" → `first_name`, see fieldNameOf). The address column
 * may be called `email`, `Email Address`, `E-mail` or `mail` (what Mailchimp, listmonk, Sendy and
 * phpList export); `--map "Courriel=email"` renames any other column. Every problem is reported
 * at once, each once, with one fix.
 */
export interface CsvHeader {
  emailIndex: number;
  /** -1 when the file has no `name` column. */
  nameIndex: number;
  /** Every other column, in file order, by its field name. */
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

/** Field names (see fieldNameOf) that are the address column. */
const EMAIL_NAMES = new Set(['email', 'email_address', 'e_mail', 'mail']);

export interface HeaderOptions {
  /**
   * `--map`: a column's header (trimmed, any case) → the name it takes (`email`, `name` or a field
   * name, made one by fieldNameOf).
   */
  map?: ReadonlyMap<string, string>;
}

/** Parses `--map` values, `Header=name`; throws a message saying what is wrong with one. */
export function parseColumnMap(pairs: readonly string[]): Map<string, string> {
  const map = new Map<string, string>();
  for (const pair of pairs) {
    const at = pair.lastIndexOf('=');
    const from = at === -1 ? '' : pair.slice(0, at).trim();
    const to = at === -1 ? '' : fieldNameOf(pair.slice(at + 1));
    if (from === '' || to === '') {
      throw new InputError(`--map "${pair}" must be COLUMN=NAME, e.g. --map "Courriel=email"`);
    }
    map.set(from.toLowerCase(), to);
  }
  return map;
}

export function parseHeader(cells: readonly string[], options: HeaderOptions = {}): HeaderResult {
  const shown = cells.map((cell) => cell.trim());
  const map = options.map ?? new Map<string, string>();

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

  shown.forEach((cell, index) => {
    const column = `column ${index + 1}`;
    if (cell === '') {
      problems.push(`${column} of the header has no name; name it, or remove the column (a trailing comma?)`);
      return;
    }
    const mapped = map.get(cell.toLowerCase());
    const plain = mapped ?? fieldNameOf(cell);
    const name = mapped === undefined && EMAIL_NAMES.has(plain) ? 'email' : plain;
    const quoted = JSON.stringify(cell);
    if (name === '') {
      problems.push(
        `${column} ${quoted} gives no field name; rename it, or name it with --map ${JSON.stringify(`${cell}=NAME`)}`,
      );
      return;
    }
    const earlier = firstAt.get(name);
    if (earlier !== undefined) {
      problems.push(
        `${column} ${quoted} is the field ${JSON.stringify(name)}, as column ${earlier + 1} ` +
          `${JSON.stringify(shown[earlier])} is; rename one of them, or remove it`,
      );
      return;
    }
    firstAt.set(name, index);
    if (name === 'email') {
      emailIndex = index;
    } else if (name === 'name') {
      nameIndex = index;
    } else if (RESERVED.has(name)) {
      problems.push(`${column} ${quoted} is reserved (${RESERVED.get(name)}); rename it`);
    } else {
      fields.push({ name, index });
    }
  });

  const present = new Set(shown.map((cell) => cell.toLowerCase()));
  for (const from of map.keys()) {
    if (!present.has(from)) {
      problems.push(
        `--map names a column ${JSON.stringify(from)} that the header does not have; check its spelling`,
      );
    }
  }

  if (emailIndex === -1) {
    const found = shown.length > 0 ? shown.map((cell) => JSON.stringify(cell)).join(', ') : 'none';
    problems.unshift(
      `there is no email column (columns found: ${found}); name the column holding the addresses ` +
        '"email", or pass --map "COLUMN=email"',
    );
  }

  return problems.length > 0
    ? { ok: false, problems }
    : { ok: true, header: { emailIndex, nameIndex, fields } };
}

/**
 * A column's field name: lower-cased, accents dropped, runs of spaces and punctuation turned into
 * `_` (none at either end), and `_` before a leading digit. `First Name` → `first_name`,
 * `FirstName` → `firstname`, `Prénom` → `prenom`, `2nd line` → `_2nd_line`. '' when nothing is left.
 */
export function fieldNameOf(name: string): string {
  const plain = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/gu, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
  if (plain === '') return '';
  return /^[0-9]/.test(plain) ? `_${plain}` : plain;
}
