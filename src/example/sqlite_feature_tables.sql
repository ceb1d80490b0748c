-- One feature table and one task table for feature {name}, as in
-- postgres_feature_tables.sql; option, result and timeline hold JSON text.
CREATE TABLE IF NOT EXISTS {name}_feature (
    id            integer PRIMARY KEY,
    client_id     integer NOT NULL,
    prompt        text,
    option        text,
    legacy_option text,
    created_at    timestamp NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX IF NOT EXISTS {name}_feature_client_id ON {name}_feature (client_id);

CREATE TABLE IF NOT EXISTS {name}_task (
    id          integer PRIMARY KEY,
    feature_id  integer NOT NULL,
    result      text,
    gpu         text,
    timeline    text,
    created_at  timestamp NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX IF NOT EXISTS {name}_task_feature_id ON {name}_task (feature_id);
