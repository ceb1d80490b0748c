-- Atelier on SQLite: the same tables and columns as postgres.sql, in
-- SQLite's terms. The request log is one table with the same composite key
-- (SQLite has no partitioning); uuids and JSON are text; SQLite has no
-- sequences, so the generator numbers rows itself (from the same starting
-- points, so legacy ids collide with req_no as on PostgreSQL).

CREATE TABLE IF NOT EXISTS studio_requests (
    req_no        integer     NOT NULL,
    requested_on  date        NOT NULL,
    member_uuid   uuid,
    kind          text        NOT NULL,
    job_ref       text,
    device        text,
    PRIMARY KEY (req_no, requested_on)
);
CREATE INDEX IF NOT EXISTS studio_requests_member ON studio_requests (member_uuid);
CREATE INDEX IF NOT EXISTS studio_requests_job_ref ON studio_requests (job_ref);
CREATE INDEX IF NOT EXISTS studio_requests_req_no ON studio_requests (req_no);

CREATE TABLE IF NOT EXISTS legacy_requests (
    id           integer     PRIMARY KEY,
    member_uuid  text,
    kind         varchar(32) NOT NULL,
    job_id       integer,
    ip           text
);
CREATE INDEX IF NOT EXISTS legacy_requests_member ON legacy_requests (member_uuid);
CREATE INDEX IF NOT EXISTS legacy_requests_job ON legacy_requests (job_id);

CREATE TABLE IF NOT EXISTS render_jobs (
    job_id   integer     PRIMARY KEY,
    prompt   text        NOT NULL,
    params   json,
    created  timestamp   NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE IF NOT EXISTS render_outputs (
    output_id  integer     PRIMARY KEY,
    job        integer     NOT NULL,
    files      json,
    preview    text,
    meta       text,
    created    timestamp   NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX IF NOT EXISTS render_outputs_job ON render_outputs (job);

CREATE TABLE IF NOT EXISTS exports (
    export_uuid   uuid        PRIMARY KEY NOT NULL,
    options       text,
    manifest_key  text,
    created       timestamp   NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE IF NOT EXISTS export_links (
    req_no       integer NOT NULL,
    export_uuid  uuid    NOT NULL,
    PRIMARY KEY (req_no, export_uuid)
);
CREATE INDEX IF NOT EXISTS export_links_export ON export_links (export_uuid);

CREATE TABLE IF NOT EXISTS avatar_uploads (
    upload_id          uuid    PRIMARY KEY NOT NULL,
    request_no         integer,
    legacy_request_id  integer,
    image_key          text    NOT NULL,
    original_name      text
);
CREATE INDEX IF NOT EXISTS avatar_uploads_request ON avatar_uploads (request_no);
CREATE INDEX IF NOT EXISTS avatar_uploads_legacy ON avatar_uploads (legacy_request_id);
