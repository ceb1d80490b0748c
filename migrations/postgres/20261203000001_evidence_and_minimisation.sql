-- Evidence: how each object and row was erased, the destruction record's
-- counts (which outlive the per-object manifest), the verification figures,
-- and what minimisation after Done needs.

-- How each manifest object ended. NULL while pending; then
--   deleted    every version and delete marker is gone (in an unversioned
--              bucket: the object), or nothing was there;
--   scheduled  tagged for the bucket's lifecycle rule to expire (tag mode);
--   locked     S3 refused permanently because of object lock / legal hold;
--   denied     S3 refused permanently otherwise (access denied).
-- Locked and denied objects are retained and reported as anomalies.
ALTER TABLE erasure_manifest_objects
    ADD COLUMN outcome       text CHECK (outcome IN ('deleted', 'scheduled', 'locked', 'denied')),
    -- Versions and delete markers removed (or versions tagged) in a
    -- versioned bucket; NULL in an unversioned one. Counted by the attempt
    -- that committed: after a crash mid-batch, only what that attempt found.
    ADD COLUMN versions      integer,
    -- For the copy of an object in a configured replica bucket: the bucket
    -- it replicates.
    ADD COLUMN replica_of    text,
    -- The row of source_table that referenced it (the first one found), so
    -- that policy can keep that row when the object cannot be erased.
    ADD COLUMN source_row_id text;

-- How each manifest row was erased: masked or deleted (the catalog's
-- policy for its table), or kept because it references an object S3
-- refused to erase and the catalog says to keep such rows.
ALTER TABLE erasure_manifest_rows
    ADD COLUMN method text CHECK (method IN ('masked', 'deleted', 'kept'));

ALTER TABLE erasure_requests
    -- Progress beside objects_deleted: tagged for expiry, and retained
    -- because S3 refused them permanently (lock, legal hold, access denied).
    ADD COLUMN objects_scheduled   bigint NOT NULL DEFAULT 0,
    ADD COLUMN objects_locked      bigint NOT NULL DEFAULT 0,
    -- Verification: objects read back, survivors found (and erased again),
    -- rows read back.
    ADD COLUMN objects_verified    bigint NOT NULL DEFAULT 0,
    ADD COLUMN survivors_found     bigint NOT NULL DEFAULT 0,
    ADD COLUMN rows_verified       bigint NOT NULL DEFAULT 0,
    -- When the per-object manifest was pruned to counts.
    ADD COLUMN manifest_pruned_at  timestamptz;

-- The destruction record's counts, written when a request reaches Done, in
-- the same transaction: per table and per bucket, each with its method. The
-- record is built from these, so it survives pruning of the manifest.
CREATE TABLE erasure_record_counts (
    request_id  uuid   NOT NULL REFERENCES erasure_requests (id) ON DELETE CASCADE,
    target      text   NOT NULL CHECK (target IN ('table', 'bucket')),
    name        text   NOT NULL,
    -- For a replica bucket: the bucket it replicates. '' otherwise, so that
    -- it can be part of the key.
    replica_of  text   NOT NULL DEFAULT '',
    -- table: masked | deleted | kept;
    -- bucket: deleted | scheduled | retained_protected | retained_locked | retained_denied
    method      text   NOT NULL,
    items       bigint NOT NULL,
    versions    bigint,
    PRIMARY KEY (request_id, target, name, replica_of, method)
);

-- The period register and pruning look requests up by when they finished.
CREATE INDEX erasure_requests_finished ON erasure_requests (finished_at) WHERE state = 'done';
