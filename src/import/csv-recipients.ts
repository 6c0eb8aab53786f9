import { open } from 'node:fs/promises';
import { pipeline } from 'node:stream';
import { type InfoRecord, parse } from 'csv-parse';
import { normaliseAddress } from '../domain/address.js';
import { InputError, NewsletterError } from '../domain/errors.js';
import { AddressSet } from './address-set.js';
import { type CsvHeader, parseHeader } from './csv-header.js';

/**
 * What reading a recipients CSV produces, in file order: one `header`, then one event per data row.
 * `line` is the 1-based line of the file where the row starts (a quoted value may span lines).
 * Invalid and duplicate rows are events, not errors: the caller decides whether to import the rest.
 */
export type CsvRecipientEvent =
  | { kind: 'header'; fields: string[] }
  | {
      kind: 'row';
      line: number;
      /** The envelope form (see normaliseAddress). */
      email: string;
      /** The ledger key: `email` lower-cased. */
      address: string;
      name: string;
      fields: Record<string, string>;
      /** The local part is not ASCII: only an SMTPUTF8 server can take it. */
      smtputf8: boolean;
    }
  | { kind: 'invalid'; line: number; problem: string }
  | { kind: 'duplicate'; line: number; firstLine: number; address: string };

export interface ReadRecipientsOptions {
  /**
   * How many invalid rows to tolerate; one more throws an InputError (the file is probably not the
   * one meant, or its address column is wrong). Duplicates do not count. Default: no limit.
   */
  maxErrors?: number;
  /** `--map`: a header (trimmed, lower-cased) → the name its column takes (see parseColumnMap). */
  map?: ReadonlyMap<string, string>;
}

/**
 * Streams a recipients CSV: UTF-8 (a BOM is skipped), comma-separated, CRLF or LF line ends,
 * RFC 4180 quoting. The header row is required: an address column (`email`, `Email Address`,
 * `E-mail` or `mail`, or any column `map` names `email`), optionally `name`, and any other columns,
 * which become merge fields named by their header (csv-header.ts: "First Name" → `first_name`).
 * Blank lines, and rows whose cells are all blank (a spreadsheet's trailing ",,,"), are skipped.
 *
 * Values are trimmed; a name's inner white space (line breaks included) is collapsed to single
 * spaces; a field keeps its inner line breaks. A `Name <a@b.c>` address with no `name` value gives
 * its name to the row.
 *
 * Memory stays flat whatever the file's size, but for the addresses seen so far (an AddressSet:
 * about 50 MB for a million rows), which is what detects duplicates.
 *
 * Throws InputError, naming the file and the line, for whatever makes the whole file unusable:
 * missing or unreadable, empty, a bad header, malformed CSV (an unclosed quote, a row with the
 * wrong number of values), text that is not UTF-8, or more invalid rows than `maxErrors`.
 */
export async function* readRecipientsCsv(
  path: string,
  options: ReadRecipientsOptions = {},
): AsyncGenerator<CsvRecipientEvent> {
  const maxErrors = options.maxErrors ?? Number.POSITIVE_INFINITY;
  if (!(maxErrors >= 0)) {
    throw new RangeError(`maxErrors must be zero or more, got ${maxErrors}`);
  }
  const handle = await openInput(path);
  const lines = new LineTracker();
  // Lines are counted inside the parser, as each record is made, and travel with the record: a
  // parse error destroys the stream and drops records it had buffered, so counting on the consuming
  // side would give the error the wrong line.
  const track = (cells: string[], context: InfoRecord): TrackedRecord => ({
    cells,
    line: lines.record(cells, context.empty_lines),
  });
  const parser = parse({
    bom: true,
    skip_empty_lines: true,
    relax_column_count: false,
    // csv-parse types on_record as returning the record's own shape; it returns whatever we give it.
    on_record: track as unknown as (cells: string[], context: InfoRecord) => string[],
  });
  // The read stream owns the file handle (autoClose) and closes it when it ends or is destroyed.
  // Errors reach the loop below through the parser; the callback only keeps them from being unhandled.
  pipeline(handle.createReadStream(), parser, () => {});

  let header: CsvHeader | null = null;
  let columns = 0;
  const seen = new AddressSet();
  let invalid = 0;
  try {
    for await (const record of parser as AsyncIterable<TrackedRecord>) {
      const { cells, line } = record;
      if (cells.some((cell) => cell.includes('\uFFFD'))) {
        throw new InputError(
          `${path}, line ${line}: the text is not valid UTF-8; save the file as "CSV UTF-8" and import it again`,
        );
      }
      if (cells.every((cell) => cell.trim() === '')) {
        continue;
      }
      if (header === null) {
        columns = cells.length;
        header = readHeader(path, line, cells, options.map);
        yield { kind: 'header', fields: header.fields.map((field) => field.name) };
        continue;
      }
      const event = toEvent(header, cells, line, seen);
      if (event.kind === 'invalid' && ++invalid > maxErrors) {
        throw new InputError(
          `${path}, line ${line}: more than ${maxErrors} invalid rows, the last: ${event.problem}`,
          ['Check that this is the file you meant and that its "email" column holds the addresses.'],
        );
      }
      yield event;
    }
  } catch (error) {
    throw error instanceof NewsletterError ? error : explain(path, error, lines, columns);
  } finally {
    parser.destroy();
  }
  if (header === null) {
    throw new InputError(
      `${path}, line 1: the file is empty; its first line must be a header row such as "email,name"`,
    );
  }
}

interface TrackedRecord {
  cells: string[];
  /** Where the record starts in the file, 1-based. */
  line: number;
}

/**
 * Finds the line each record starts on from what csv-parse reports reliably: the records' own
 * text and the count of blank lines it skipped. Its `info.lines` is not used: it counts a CRLF
 * inside a quoted value as two lines, and it gives the line where a record ends.
 */
class LineTracker {
  /** The line after the last record. */
  private next = 1;
  private blanks = 0;

  /** The start line of the record the parser is on, given its blank-line count so far. */
  startOf(blankLines: number): number {
    return this.next + (blankLines - this.blanks);
  }

  record(cells: readonly string[], blankLines: number): number {
    const start = this.startOf(blankLines);
    let breaks = 0;
    for (const cell of cells) {
      breaks += cell.match(/\r\n|\r|\n/g)?.length ?? 0;
    }
    this.next = start + breaks + 1;
    this.blanks = blankLines;
    return start;
  }
}

async function openInput(path: string) {
  try {
    const handle = await open(path, 'r');
    const stat = await handle.stat().catch(async (error: unknown) => {
      await handle.close();
      throw error;
    });
    if (stat.isDirectory()) {
      await handle.close();
      throw new InputError(`${path} is a directory; give the path of a CSV file`);
    }
    return handle;
  } catch (error) {
    if (error instanceof NewsletterError) throw error;
    throw unreadable(path, error);
  }
}

function readHeader(
  path: string,
  line: number,
  cells: readonly string[],
  map: ReadonlyMap<string, string> | undefined,
): CsvHeader {
  const result = parseHeader(cells, map === undefined ? {} : { map });
  if (result.ok) {
    return result.header;
  }
  const [first, ...rest] = result.problems;
  const more = rest.length > 0 ? ` (and ${rest.length} more problem${rest.length > 1 ? 's' : ''})` : '';
  // The first problem is the message, the others its details: each is printed once.
  throw new InputError(`${path}, line ${line}: ${first}${more}`, rest);
}

function toEvent(
  header: CsvHeader,
  cells: readonly string[],
  line: number,
  seen: AddressSet,
): CsvRecipientEvent {
  const result = normaliseAddress(cells[header.emailIndex] ?? '');
  if (!result.ok) {
    return { kind: 'invalid', line, problem: result.problem };
  }
  const firstLine = seen.firstLineOrAdd(result.address, line);
  if (firstLine !== undefined) {
    return { kind: 'duplicate', line, firstLine, address: result.address };
  }
  const fields: Record<string, string> = {};
  for (const { name, index } of header.fields) {
    fields[name] = (cells[index] ?? '').trim();
  }
  const cellName = header.nameIndex === -1 ? '' : collapse(cells[header.nameIndex] ?? '');
  return {
    kind: 'row',
    line,
    email: result.email,
    address: result.address,
    name: cellName === '' ? (result.displayName ?? '') : cellName,
    fields,
    smtputf8: result.smtputf8,
  };
}

/** A name goes into greetings and headers: no line breaks, no control characters, single spaces. */
function collapse(value: string): string {
  return value.replace(/[\s\p{Cc}]+/gu, ' ').trim();
}

const CSV_HINTS: Record<string, string> = {
  CSV_QUOTE_NOT_CLOSED:
    "a quoted value starting in this row is never closed; add the closing '\"', and write a '\"' " +
    'inside a quoted value as \'""\'',
  CSV_INVALID_CLOSING_QUOTE:
    "a quoted value is followed by more text before the next comma; write a '\"' inside a quoted value " +
    'as \'""\'',
  INVALID_OPENING_QUOTE:
    "a '\"' appears inside an unquoted value; put the whole value in quotes and write the '\"' as '\"\"'",
  CSV_MAX_RECORD_SIZE:
    'this row is longer than 128,000 characters, most likely because of a quote that is never closed',
};

/** Turns a parse or read failure into a message that names the file and line and says what to do. */
function explain(path: string, error: unknown, lines: LineTracker, columns: number): Error {
  if (!(error instanceof Error)) {
    return new InputError(`${path}: cannot be read: ${String(error)}`);
  }
  const details = error as Error & Record<string, unknown>;
  const code = typeof details.code === 'string' ? details.code : '';
  if (!code.startsWith('CSV_') && code !== 'INVALID_OPENING_QUOTE') {
    return unreadable(path, error);
  }
  const blanks = typeof details.empty_lines === 'number' ? details.empty_lines : 0;
  const where = `${path}, line ${lines.startOf(blanks)}`;
  if (code === 'CSV_RECORD_INCONSISTENT_FIELDS_LENGTH') {
    const found = Array.isArray(details.record) ? details.record.length : 'a different number of';
    return new InputError(
      `${where}: this row has ${found} values but the header has ${columns} columns; quote values ` +
        'that contain commas, and give every row one value per column (empty ones too)',
    );
  }
  const hint = CSV_HINTS[code];
  return new InputError(
    hint === undefined ? `${where}: the CSV is malformed (${error.message})` : `${where}: ${hint}`,
  );
}

function unreadable(path: string, error: unknown): InputError {
  const code = (error as { code?: unknown } | null)?.code;
  switch (code) {
    case 'ENOENT':
      return new InputError(`${path}: no such file; check the path`);
    case 'EACCES':
    case 'EPERM':
      return new InputError(`${path}: permission denied; make the file readable by this user`);
    case 'EISDIR':
      return new InputError(`${path} is a directory; give the path of a CSV file`);
    default:
      return new InputError(
        `${path}: cannot be read (${error instanceof Error ? error.message : String(error)})`,
      );
  }
}
