/** Parsers for option values that more than one command takes. */
import { InvalidArgumentError } from 'commander';

/** A repeatable option (`--list a --list b`): every value, in order. */
export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** A count or a number of seconds: a usage error (exit 2) unless it is a whole number above 0. */
export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0)
    throw new InvalidArgumentError(`"${value}" is not a whole number above 0.`);
  return n;
}
