/**
 * The file of `newsletter suppress import`: what other tools export as a "do not mail" list.
 *
 * - Plain text, one address per line; or CSV (comma, semicolon or tab) whose first column is the
 *   address and whose optional second column is the reason.
 * - A header row is recognised by its first cell (`email`, `address`, `e-mail`, `mail`); then the
 *   columns are found by name (`reason` for the reason) and may come in any order.
 * - Blank lines and lines starting with `#` are skipped; a BOM is skipped.
 *
 * Every address goes through the same normalisation as the recipients import (domain/address.ts),
 * so a suppression matches the subscriber it is meant for.
 */
import { readFile } from 'node:fs/promises';
import { parse } from 'csv-parse/sync';
import { normaliseAddress } from '../domain/address.js';
import { InputError } from '../domain/errors.js';

export interface SuppressionListEntry {
  line: number;
  address: string;
  /** The file's reason, or null when it gave none. */
  reason: string | null;
}

export interface SuppressionList {
  entries: SuppressionListEntry[];
  invalid: { line: number; problem: string }[];
}

const ADDRESS_HEADERS = new Set(['email', 'address', 'e-mail', 'mail', 'email address']);

export async function readSuppressionList(path: string): Promise<SuppressionList> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new InputError(
      code === 'ENOENT' ? `${path} does not exist.` : `Cannot read ${path} (${code ?? String(error)}).`,
    );
  }
  if (text.includes('\uFFFD')) {
    throw new InputError(`${path} is not valid UTF-8 text; save it as UTF-8 and import it again.`);
  }
  let records: { record: string[]; info: { lines: number } }[];
  try {
    records = parse(text, {
      bom: true,
      comment: '#',
      comment_no_infix: true,
      delimiter: [',', ';', '\t'],
      info: true,
      relax_column_count: true,
      skip_empty_lines: true,
      trim: true,
    }) as unknown as { record: string[]; info: { lines: number } }[];
  } catch (error) {
    const line = (error as { lines?: number }).lines;
    throw new InputError(
      `${path}${line ? `, line ${line}` : ''}: not a readable list (${(error as Error).message}).`,
      ['Write one address per line, or a CSV with the address first and an optional reason after it.'],
    );
  }

  let addressColumn = 0;
  let reasonColumn = 1;
  const first = records[0]?.record;
  if (first && ADDRESS_HEADERS.has((first[0] ?? '').toLowerCase())) {
    const names = first.map((cell) => cell.toLowerCase());
    addressColumn = names.findIndex((name) => ADDRESS_HEADERS.has(name));
    reasonColumn = names.indexOf('reason');
    records = records.slice(1);
  }

  const result: SuppressionList = { entries: [], invalid: [] };
  for (const { record, info } of records) {
    if (record.every((cell) => cell === '')) continue;
    const cell = record[addressColumn] ?? '';
    const parsed = normaliseAddress(cell);
    if (!parsed.ok) {
      result.invalid.push({ line: info.lines, problem: parsed.problem });
      continue;
    }
    const reason = reasonColumn === -1 ? '' : (record[reasonColumn] ?? '').replace(/\s+/g, ' ').trim();
    result.entries.push({ line: info.lines, address: parsed.address, reason: reason === '' ? null : reason });
  }
  return result;
}
