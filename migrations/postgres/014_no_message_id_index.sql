-- 014: the ledger loses its Message-ID index (010, a hash index since 012; issue 17, session 8).
-- Its only reader was a bounce or complaint report that lost its VERP token; such a report names
-- the delivery's address, and the Message-ID names the newsletter (`<nNEWSLETTER.MAC@domain>`), so
-- the row is found by the UNIQUE (newsletter_id, address) key and its Message-ID compared
-- (src/bounces/authenticate.ts). Every claim inserted into the index and every outcome wrote a new
-- entry (an outcome is never a HOT update). SQLite's is 012.

DROP INDEX deliveries_by_message_id;
