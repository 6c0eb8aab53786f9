/**
 * `recipients forget` on SQLite: one person's data erased in one IMMEDIATE transaction, keeping
 * only the keyed hash that keeps them out (src/domain/forgotten.ts says what is kept and why).
 */
import {
  ERASED_REPLY,
  FORGET_KEY_META,
  type ForgetResult,
  ForgottenAddresses,
  forgottenHash,
  forgottenLedgerAddress,
  newForgetKey,
} from '../../domain/forgotten.js';
import type { Millis } from '../../domain/types.js';
import type { SqliteDb } from './db.js';

export function forgetAddress(c: SqliteDb, address: string, now: Millis): ForgetResult {
  return c.immediate(() => {
    // The first erasure makes the database's key; OR IGNORE keeps the first one ever made.
    c.sql('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)').run(FORGET_KEY_META, newForgetKey());
    const { value: key } = c.sql('SELECT value FROM meta WHERE key = ?').get(FORGET_KEY_META) as {
      value: string;
    };
    const hash = forgottenHash(key, address);
    c.sql('INSERT OR IGNORE INTO forgotten_addresses (address_hash, created_at) VALUES (?, ?)').run(
      hash,
      now,
    );
    // Memberships go with the row (ON DELETE CASCADE); the fields are columns of it.
    const subscriber = c.sql('DELETE FROM subscribers WHERE address = ?').run(address).changes === 1;
    c.sql('DELETE FROM suppressions WHERE address = ?').run(address);
    c.sql('DELETE FROM bounce_events WHERE address = ?').run(address);
    // Per-list opt-outs name the address; the forgotten hash keeps them out of every list now.
    c.sql('DELETE FROM list_opt_outs WHERE address = ?').run(address);
    // The rows stay (each newsletter's counts must still add up to its audience), naming nobody:
    // a reply or reason that quoted the address (a 5.1.1 usually does) is replaced as a whole.
    const deliveries = c
      .sql(
        `UPDATE deliveries SET address = @ledger,
                smtp_reply = CASE WHEN instr(lower(smtp_reply), @address) > 0 THEN @erased ELSE smtp_reply END,
                reason = CASE WHEN instr(lower(reason), @address) > 0 THEN @erased ELSE reason END
          WHERE address = @address`,
      )
      .run({ ledger: forgottenLedgerAddress(hash), address, erased: ERASED_REPLY }).changes;
    // The audit trail names addresses too (a `reconcile … EMAIL`): the same stand-in replaces them.
    c.sql(
      'UPDATE events SET detail = replace(detail, @needle, @stand_in) WHERE instr(detail, @needle) > 0',
    ).run({
      needle: JSON.stringify(address),
      stand_in: JSON.stringify(forgottenLedgerAddress(hash)),
    });
    return { subscriber, deliveries };
  });
}

export function forgottenAddresses(c: SqliteDb): ForgottenAddresses {
  const key = c.sql('SELECT value FROM meta WHERE key = ?').get(FORGET_KEY_META) as
    | { value: string }
    | undefined;
  const hashes = c.sql('SELECT address_hash FROM forgotten_addresses').all() as { address_hash: string }[];
  return new ForgottenAddresses(key?.value ?? null, new Set(hashes.map((row) => row.address_hash)));
}
