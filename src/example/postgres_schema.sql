-- The example service: shaped like the seed's. Three client tables (two
-- legacy copies without created_at, and the current table, partitioned by
-- created_at), and a feature table and a task table per feature type.
-- Client ids come from one sequence, so they are unique across the three.

CREATE SEQUENCE IF NOT EXISTS client_id_seq;

CREATE TABLE IF NOT EXISTS client_old (
    id          bigint      PRIMARY KEY,
    client_key  varchar(64),
    type        varchar(40) NOT NULL,
    ip_address  text,
    user_agent  text
);
CREATE INDEX IF NOT EXISTS client_old_client_key ON client_old (client_key);

CREATE TABLE IF NOT EXISTS client_temp (
    id          bigint      PRIMARY KEY,
    client_key  varchar(64),
    type        varchar(40) NOT NULL,
    ip_address  text,
    user_agent  text
);
CREATE INDEX IF NOT EXISTS client_temp_client_key ON client_temp (client_key);

CREATE TABLE IF NOT EXISTS client (
    id          bigint      NOT NULL DEFAULT nextval('client_id_seq'),
    client_key  varchar(64),
    type        varchar(40) NOT NULL,
    ip_address  text,
    user_agent  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE TABLE IF NOT EXISTS client_before_2026 PARTITION OF client FOR VALUES FROM (MINVALUE) TO ('2026-01-01');
CREATE TABLE IF NOT EXISTS client_2026 PARTITION OF client FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE IF NOT EXISTS client_later PARTITION OF client DEFAULT;
CREATE INDEX IF NOT EXISTS client_client_key ON client (client_key);
