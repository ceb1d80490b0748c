-- One feature table and one task table for feature {name}. Prompts are long
-- text (the seed's warning: never read them in bulk); timeline and gpu are
-- not personal and are kept.
CREATE TABLE IF NOT EXISTS {name}_feature (
    id          bigserial   PRIMARY KEY,
    client_id   bigint      NOT NULL,
    prompt      text,
    option      jsonb,
    -- Before jsonb, options were stored as JSON text; old rows still are.
    legacy_option text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS {name}_feature_client_id ON {name}_feature (client_id);

CREATE TABLE IF NOT EXISTS {name}_task (
    id          bigserial   PRIMARY KEY,
    feature_id  bigint      NOT NULL,
    result      jsonb,
    gpu         text,
    timeline    jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS {name}_task_feature_id ON {name}_task (feature_id);
