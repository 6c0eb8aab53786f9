-- 012: the ledger loses its Message-ID index (009; issue 17, session 8). Its only reader was a
-- bounce or complaint report that lost its VERP token; such a report names the delivery's address,
-- and the Message-ID names the newsletter (`<nNEWSLETTER.MAC@domain>`), so the row is found by the
-- UNIQUE (newsletter_id, address) key and its Message-ID compared (src/bounces/authenticate.ts).
-- The index cost every claim an insert at a random place (the MACs look random): about 11 µs of a
-- sender's ~185 µs a message at the defaults, in the WAL's pages and checksums and the B-tree
-- (bench/NOTES.md). PostgreSQL's is 014.

DROP INDEX deliveries_by_message_id;
