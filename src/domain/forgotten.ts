/**
 * What `recipients forget` (a GDPR erasure) keeps of a person: a keyed hash of the normalised
 * address, and nothing else. The key is random and per database (meta `forget_key`, made by the
 * first erasure): the hash must keep working whether NEWSLETTER_SECRET is set, rotated or lost, and
 * without the database nobody can test a guessed address against the stored hashes.
 *
 * The ledger's rows for the person stay, so that every newsletter's counts still add up to its
 * audience (promise 2), but their address becomes `forgotten:<hash>`: still unique per newsletter
 * (the ledger key), naming nobody.
 */
import { createHmac, randomBytes } from 'node:crypto';

export const FORGET_KEY_META = 'forget_key';

/** What `recipients forget` erased: the subscriber row (false: there was none), and ledger rows. */
export interface ForgetResult {
  subscriber: boolean;
  deliveries: number;
}

/** The ledger's stand-in for an erased address. */
export const FORGOTTEN_PREFIX = 'forgotten:';

/** What an erased address's SMTP reply or reason becomes when it names the address. */
export const ERASED_REPLY = '[erased by recipients forget: the reply named the address]';

export function newForgetKey(): string {
  return randomBytes(32).toString('base64url');
}

export function forgottenHash(key: string, address: string): string {
  return createHmac('sha256', key).update(`forgotten\n${address}`).digest('hex');
}

export function forgottenLedgerAddress(hash: string): string {
  return `${FORGOTTEN_PREFIX}${hash}`;
}

/** The erased addresses of one database, for checking an import or an add against. */
export class ForgottenAddresses {
  constructor(
    private readonly key: string | null,
    private readonly hashes: ReadonlySet<string>,
  ) {}

  has(address: string): boolean {
    return this.key !== null && this.hashes.has(forgottenHash(this.key, address));
  }
}
