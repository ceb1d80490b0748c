-- The example service on SQLite: the same tables and columns as
-- postgres_schema.sql, in SQLite's terms. The current client table is one
-- table (SQLite has no partitioning); JSON is text; times are UTC text
-- (declared timestamp, as on PostgreSQL: the catalog check reads it).
-- SQLite has no sequences: the generator takes client ids from
-- client_id_seq, a one-row table standing in for PostgreSQL's sequence of
-- that name, so ids stay unique across the three client tables and across
-- loads.

CREATE TABLE IF NOT EXISTS client_id_seq (last_value integer NOT NULL);
INSERT INTO client_id_seq (last_value) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM client_id_seq);

CREATE TABLE IF NOT EXISTS client_old (
    id          integer     PRIMARY KEY,
    client_key  varchar(64),
    type        varchar(40) NOT NULL,
    ip_address  text,
    user_agent  text
);
CREATE INDEX IF NOT EXISTS client_old_client_key ON client_old (client_key);

CREATE TABLE IF NOT EXISTS client_temp (
    id          integer     PRIMARY KEY,
    client_key  varchar(64),
    type        varchar(40) NOT NULL,
    ip_address  text,
    user_agent  text
);
CREATE INDEX IF NOT EXISTS client_temp_client_key ON client_temp (client_key);

CREATE TABLE IF NOT EXISTS client (
    id          integer     PRIMARY KEY,
    client_key  varchar(64),
    type        varchar(40) NOT NULL,
    ip_address  text,
    user_agent  text,
    created_at  timestamp   NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX IF NOT EXISTS client_client_key ON client (client_key);
