-- 005: `recipients forget` (issue 13). What is left of an erased person is a keyed hash of the
-- address (HMAC-SHA256 under the per-database key in meta `forget_key`, src/domain/forgotten.ts),
-- so that a re-import or `recipients add` of the same address stays out, and nothing else.
--
-- Subscriber ids need no change here: an identity column's sequence never hands an id out twice,
-- which is what keeps an old unsubscribe link from ever naming somebody else. SQLite's 004 gives
-- its subscribers the same guarantee.

CREATE TABLE forgotten_addresses (
  address_hash text PRIMARY KEY,
  created_at   bigint NOT NULL
);
