/**
 * The check a From (or Reply-To) value passes before it is stored or configured: one mailbox,
 * `news@example.org` or `News <news@example.org>`, by the same rules as a recipient's address
 * (address.ts). A value such as `@` or `nonsense@` would otherwise be accepted at `create` and fail
 * only at send time, at the relay, for every recipient; and the From address is also the envelope
 * sender handed to sendmail, so it must never start with `-`.
 */
import { normaliseAddress } from './address.js';

const EXAMPLE = 'use e.g. "News <news@example.org>" or news@example.org';

/** Why `value` cannot be a From address, as a sentence naming `setting` and the fix; null when it can. */
export function fromAddressProblem(setting: string, value: string): string | null {
  const result = normaliseAddress(value);
  if (result.ok) return null;
  return `${setting} is not a usable address: ${result.problem}; ${EXAMPLE}.`;
}
