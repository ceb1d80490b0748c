-- Evidence: how each object and row was erased, the destruction record's
-- counts, the verification figures, and what minimisation after Done needs.
-- The meaning of every column is documented in migrations/postgres/.
-- (SQLite adds one column per ALTER TABLE.)

ALTER TABLE erasure_manifest_objects
    ADD COLUMN outcome text CHECK (outcome IN ('deleted', 'scheduled', 'locked', 'denied'));
ALTER TABLE erasure_manifest_objects ADD COLUMN versions integer;
ALTER TABLE erasure_manifest_objects ADD COLUMN replica_of text;
ALTER TABLE erasure_manifest_objects ADD COLUMN source_row_id text;

ALTER TABLE erasure_manifest_rows
    ADD COLUMN method text CHECK (method IN ('masked', 'deleted', 'kept'));

ALTER TABLE erasure_requests ADD COLUMN objects_scheduled  integer NOT NULL DEFAULT 0;
ALTER TABLE erasure_requests ADD COLUMN objects_locked     integer NOT NULL DEFAULT 0;
ALTER TABLE erasure_requests ADD COLUMN objects_verified   integer NOT NULL DEFAULT 0;
ALTER TABLE erasure_requests ADD COLUMN survivors_found    integer NOT NULL DEFAULT 0;
ALTER TABLE erasure_requests ADD COLUMN rows_verified      integer NOT NULL DEFAULT 0;
ALTER TABLE erasure_requests ADD COLUMN manifest_pruned_at text;

-- The destruction record's counts, written at Done; they outlive the
-- manifest.
CREATE TABLE erasure_record_counts (
    request_id  text    NOT NULL REFERENCES erasure_requests (id) ON DELETE CASCADE,
    target      text    NOT NULL CHECK (target IN ('table', 'bucket')),
    name        text    NOT NULL,
    replica_of  text    NOT NULL DEFAULT '',
    method      text    NOT NULL,
    items       integer NOT NULL,
    versions    integer,
    PRIMARY KEY (request_id, target, name, replica_of, method)
);

CREATE INDEX erasure_requests_finished ON erasure_requests (finished_at) WHERE state = 'done';
