-- Atelier: a second example service, written to a different plan than the
-- first (the one shaped like the seed's). Members are uuids; the current
-- request log is partitioned and keyed by (req_no, requested_on); the
-- legacy log has its own sequence, so its ids collide with req_no; a
-- request row points at its job (text holding digits, or a bigint); exports
-- hang off requests through a join table; avatars point back at their
-- request; files are bare keys in buckets the catalog names; options are
-- `json` (not jsonb) or JSON held in text.

CREATE SEQUENCE IF NOT EXISTS atelier_req_no;
CREATE SEQUENCE IF NOT EXISTS atelier_legacy_id;
CREATE SEQUENCE IF NOT EXISTS atelier_job_id;
CREATE SEQUENCE IF NOT EXISTS atelier_output_id;

CREATE TABLE IF NOT EXISTS studio_requests (
    req_no        bigint      NOT NULL,
    requested_on  date        NOT NULL,
    member_uuid   uuid,
    kind          text        NOT NULL,
    job_ref       text,
    device        text,
    PRIMARY KEY (req_no, requested_on)
) PARTITION BY RANGE (requested_on);
CREATE TABLE IF NOT EXISTS studio_requests_2025 PARTITION OF studio_requests
    FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE IF NOT EXISTS studio_requests_rest PARTITION OF studio_requests DEFAULT;
CREATE INDEX IF NOT EXISTS studio_requests_member ON studio_requests (member_uuid);
CREATE INDEX IF NOT EXISTS studio_requests_job_ref ON studio_requests (job_ref);
CREATE INDEX IF NOT EXISTS studio_requests_req_no ON studio_requests (req_no);

CREATE TABLE IF NOT EXISTS legacy_requests (
    id           integer     PRIMARY KEY,
    member_uuid  text,
    kind         varchar(32) NOT NULL,
    job_id       bigint,
    ip           text
);
CREATE INDEX IF NOT EXISTS legacy_requests_member ON legacy_requests (member_uuid);
CREATE INDEX IF NOT EXISTS legacy_requests_job ON legacy_requests (job_id);

CREATE TABLE IF NOT EXISTS render_jobs (
    job_id   bigint      PRIMARY KEY,
    prompt   text        NOT NULL,
    params   json,
    created  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS render_outputs (
    output_id  bigint      PRIMARY KEY,
    job        bigint      NOT NULL,
    files      json,
    preview    text,
    meta       text,
    created    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS render_outputs_job ON render_outputs (job);

CREATE TABLE IF NOT EXISTS exports (
    export_uuid   uuid        PRIMARY KEY,
    options       text,
    manifest_key  text,
    created       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS export_links (
    req_no       bigint NOT NULL,
    export_uuid  uuid   NOT NULL,
    PRIMARY KEY (req_no, export_uuid)
);
CREATE INDEX IF NOT EXISTS export_links_export ON export_links (export_uuid);

CREATE TABLE IF NOT EXISTS avatar_uploads (
    upload_id          uuid    PRIMARY KEY,
    request_no         bigint,
    legacy_request_id  integer,
    image_key          text    NOT NULL,
    original_name      text
);
CREATE INDEX IF NOT EXISTS avatar_uploads_request ON avatar_uploads (request_no);
CREATE INDEX IF NOT EXISTS avatar_uploads_legacy ON avatar_uploads (legacy_request_id);
