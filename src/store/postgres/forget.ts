/**
 * `recipients forget` on PostgreSQL: one person's data erased in one transaction, keeping only
 * the keyed hash that keeps them out (src/domain/forgotten.ts says what is kept and why).
 */
import * as forgotten from '../../domain/forgotten.js';
import type { Millis } from '../../domain/types.js';
import type { PgDb } from './db.js';

export function forgetAddress(pg: PgDb, address: string, now: Millis): Promise<forgotten.ForgetResult> {
  return pg.tx(async (sql) => {
    // The first erasure makes the database's key; two at once keep the first one committed.
    await sql.query('INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING', [
      forgotten.FORGET_KEY_META,
      forgotten.newForgetKey(),
    ]);
    const [row] = (
      await sql.query<{ value: string }>('SELECT value FROM meta WHERE key = $1', [forgotten.FORGET_KEY_META])
    ).rows;
    const hash = forgotten.forgottenHash(row?.value ?? '', address);
    await sql.query(
      'INSERT INTO forgotten_addresses (address_hash, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING',
      [hash, now],
    );
    // Memberships go with the row (ON DELETE CASCADE); the fields are columns of it.
    const subscriber =
      (await sql.query('DELETE FROM subscribers WHERE address = $1', [address])).rowCount === 1;
    await sql.query('DELETE FROM suppressions WHERE address = $1', [address]);
    await sql.query('DELETE FROM bounce_events WHERE address = $1', [address]);
    // Per-list opt-outs name the address; the forgotten hash keeps them out of every list now.
    await sql.query('DELETE FROM list_opt_outs WHERE address = $1', [address]);
    // The rows stay (each newsletter's counts must still add up to its audience), naming nobody:
    // a reply or reason that quoted the address (a 5.1.1 usually does) is replaced as a whole.
    const { rowCount: deliveries } = await sql.query(
      `UPDATE deliveries SET address = $1,
              smtp_reply = CASE WHEN strpos(lower(smtp_reply), $2) > 0 THEN $3 ELSE smtp_reply END,
              reason = CASE WHEN strpos(lower(reason), $2) > 0 THEN $3 ELSE reason END
        WHERE address = $2`,
      [forgotten.forgottenLedgerAddress(hash), address, forgotten.ERASED_REPLY],
    );
    // The audit trail names addresses too (a `reconcile … EMAIL`): the same stand-in replaces them.
    await sql.query(
      'UPDATE events SET detail = replace(detail::text, $1, $2)::jsonb WHERE strpos(detail::text, $1) > 0',
      [JSON.stringify(address), JSON.stringify(forgotten.forgottenLedgerAddress(hash))],
    );
    return { subscriber, deliveries };
  });
}

export async function forgottenAddresses(pg: PgDb): Promise<forgotten.ForgottenAddresses> {
  const [key] = await pg.rows<{ value: string }>('SELECT value FROM meta WHERE key = $1', [
    forgotten.FORGET_KEY_META,
  ]);
  const hashes = await pg.rows<{ address_hash: string }>('SELECT address_hash FROM forgotten_addresses');
  return new forgotten.ForgottenAddresses(key?.value ?? null, new Set(hashes.map((r) => r.address_hash)));
}
