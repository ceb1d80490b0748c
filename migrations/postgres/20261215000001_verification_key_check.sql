-- What verification could check of the member's client rows: which client
-- tables were read back for the member's key (none left), and which could
-- not be (their erasure keeps the key column). NULL until verified. The
-- destruction record states it as checked, never as fixed text.
ALTER TABLE erasure_requests
    ADD COLUMN key_check_tables   text,
    ADD COLUMN key_unchecked_tables text;
