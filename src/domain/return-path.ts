/**
 * The return path (NEWSLETTER_RETURN_PATH, NEWSLETTER_RETURN_PATH_DELIMITER): the envelope sender
 * of every message, VERP-encoded per delivery as `local+bTOKEN@domain` (src/domain/return-path-token.ts).
 * Pure: parsing the setting, and building the addresses.
 *
 * Without NEWSLETTER_RETURN_PATH the envelope sender is the newsletter's From address with the
 * token added (`news+bTOKEN@example.org`), which keeps SPF aligned with the From for DMARC, as
 * before. The List-Unsubscribe mailto is offered only when NEWSLETTER_RETURN_PATH is set: setting
 * it is how an operator says "this mailbox is read by `bounces receive`, `import` or `fetch`", and
 * a mailto that nothing reads must never be advertised.
 */
import { normaliseAddress } from './address.js';

export type ReturnPathDelimiter = '+' | '-';

export interface ReturnPathSetting {
  /** NEWSLETTER_RETURN_PATH as a bare address (A-label domain), or null: the From address. */
  address: string | null;
  delimiter: ReturnPathDelimiter;
}

/** Local parts may have 64 octets (RFC 5321): the token and delimiter take 28 of them. */
export const MAX_RETURN_PATH_LOCAL = 64 - 28;

export const DEFAULT_RETURN_PATH: ReturnPathSetting = { address: null, delimiter: '+' };

/** The setting from the two variables' values; every problem as a sentence naming the fix. */
export function parseReturnPath(
  address: string | null,
  delimiter: string | null,
  problems: string[],
): ReturnPathSetting {
  let parsedDelimiter: ReturnPathDelimiter = '+';
  if (delimiter !== null) {
    if (delimiter === '+' || delimiter === '-') parsedDelimiter = delimiter;
    else
      problems.push(
        `NEWSLETTER_RETURN_PATH_DELIMITER "${delimiter}" must be + (Postfix's recipient_delimiter, the default) or - (Exim-style suffixes).`,
      );
  }
  if (address === null) return { address: null, delimiter: parsedDelimiter };
  const problem = returnPathProblem(address, parsedDelimiter);
  if (problem) {
    problems.push(`NEWSLETTER_RETURN_PATH ${problem}`);
    return { address: null, delimiter: parsedDelimiter };
  }
  return { address: (normaliseAddress(address) as { address: string }).address, delimiter: parsedDelimiter };
}

/** Why `address` cannot carry tokens (as the end of a sentence), or null. Also used for a From. */
export function returnPathProblem(address: string, delimiter: ReturnPathDelimiter): string | null {
  if (/[<>"\s]/.test(address))
    return `"${address}" must be a bare address such as bounces@example.org (no name, no angle brackets).`;
  const parsed = normaliseAddress(address);
  if (!parsed.ok) return `"${address}" is not a usable address: ${parsed.problem}.`;
  const local = localPart(parsed.address);
  if (local.length > MAX_RETURN_PATH_LOCAL)
    return `"${address}" has a local part longer than ${MAX_RETURN_PATH_LOCAL} characters: the token would not fit in 64; use a shorter one such as bounces@.`;
  if (local.includes(delimiter))
    return `"${address}" already contains the delimiter "${delimiter}": the MTA would cut the local part there; use e.g. bounces@ or set NEWSLETTER_RETURN_PATH_DELIMITER.`;
  return null;
}

/** `bounces@example.org` + `+` + token → `bounces+TOKEN@example.org`. */
export function verpAddress(base: string, delimiter: ReturnPathDelimiter, token: string): string {
  const at = base.lastIndexOf('@');
  return `${base.slice(0, at)}${delimiter}${token}${base.slice(at)}`;
}

export function localPart(address: string): string {
  const at = address.lastIndexOf('@');
  return at === -1 ? address : address.slice(0, at);
}
