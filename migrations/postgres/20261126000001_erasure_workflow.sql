-- lethe's own tables. They live in the service's database, next to the tables
-- they erase, so that masking a batch and recording its checkpoint commit in
-- one transaction.

-- One row per erasure request: the persisted state machine, its checkpoint,
-- its lease and its retry schedule. `INSERT INTO erasure_requests (subject_key)
-- VALUES ('...')` is a complete submission: every other column has a default.
CREATE TABLE erasure_requests (
    id                uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    -- The member's key in the service. Replaced by subject_hash after Done.
    subject_key       text        CHECK (subject_key <> ''),
    subject_hash      text,
    -- The submitter's own reference; a second submit with it returns the first.
    idempotency_key   text        UNIQUE,
    state             text        NOT NULL DEFAULT 'requested' CHECK (state IN
                          ('requested', 'targets_found', 's3_cleared', 'db_masked',
                           'done', 'failed', 'cancelled', 'coalesced')),
    -- For a failed request: the state `retry` resumes from.
    resume_state      text        CHECK (resume_state IN
                          ('requested', 'targets_found', 's3_cleared', 'db_masked')),
    -- For a duplicate submission: the active request it was folded into.
    coalesced_into    uuid        REFERENCES erasure_requests (id),
    -- Checkpoint of the phase in progress: batches done, batches known, and a
    -- phase-specific cursor (keyset position or last manifest sequence).
    batch_done        integer     NOT NULL DEFAULT 0,
    batch_total       integer,
    phase_cursor      jsonb,
    -- Progress counters, updated in the same transaction as the checkpoint.
    rows_found        bigint      NOT NULL DEFAULT 0,
    objects_found     bigint      NOT NULL DEFAULT 0,
    objects_retained  bigint      NOT NULL DEFAULT 0,
    objects_deleted   bigint      NOT NULL DEFAULT 0,
    rows_masked       bigint      NOT NULL DEFAULT 0,
    anomaly_count     integer     NOT NULL DEFAULT 0,
    -- Retries: consecutive failed attempts since the last committed batch.
    attempts          integer     NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    last_error        text,
    -- Lease: who works on it until when. lease_epoch is the fencing token:
    -- every claim bumps it, and every write by a worker names the epoch it
    -- holds, so a stale holder's writes match no row.
    lease_owner       text,
    lease_expires_at  timestamptz,
    lease_epoch       bigint      NOT NULL DEFAULT 0,
    requested_at      timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    targets_found_at  timestamptz,
    s3_started_at     timestamptz,
    s3_cleared_at     timestamptz,
    db_masked_at      timestamptz,
    finished_at       timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (subject_key IS NOT NULL OR subject_hash IS NOT NULL),
    CHECK ((state = 'coalesced') = (coalesced_into IS NOT NULL)),
    CHECK ((state = 'failed') = (resume_state IS NOT NULL))
);

-- At most one active request per subject: the backstop behind coalescing, and
-- the reason that holding a request's lease means holding its subject.
CREATE UNIQUE INDEX erasure_requests_one_active_per_subject
    ON erasure_requests (subject_key)
    WHERE state IN ('requested', 'targets_found', 's3_cleared', 'db_masked', 'failed');

-- The claim query's access path.
CREATE INDEX erasure_requests_claimable
    ON erasure_requests (next_attempt_at)
    WHERE state IN ('requested', 'targets_found', 's3_cleared', 'db_masked');

CREATE INDEX erasure_requests_subject_hash ON erasure_requests (subject_hash);
CREATE INDEX erasure_requests_coalesced_into ON erasure_requests (coalesced_into);

-- A submission for a subject that already has an active request is folded
-- into it instead of failing on the unique index: the new row is kept, in
-- state 'coalesced', pointing at the active one. The advisory lock serialises
-- concurrent submissions for one subject, so two of them cannot both miss
-- each other; READ COMMITTED gives the SELECT a snapshot taken after the lock.
CREATE FUNCTION erasure_requests_coalesce() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    active_id uuid;
BEGIN
    IF NEW.state <> 'requested' OR NEW.subject_key IS NULL THEN
        RETURN NEW;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('lethe/subject/' || NEW.subject_key, 0));
    SELECT id INTO active_id
      FROM erasure_requests
     WHERE subject_key = NEW.subject_key
       AND state IN ('requested', 'targets_found', 's3_cleared', 'db_masked', 'failed')
     ORDER BY requested_at
     LIMIT 1;
    IF active_id IS NOT NULL THEN
        NEW.state := 'coalesced';
        NEW.coalesced_into := active_id;
        NEW.finished_at := now();
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER erasure_requests_coalesce
    BEFORE INSERT ON erasure_requests
    FOR EACH ROW EXECUTE FUNCTION erasure_requests_coalesce();

-- Wake idle workers: they LISTEN on this channel and poll as a fallback.
CREATE FUNCTION erasure_requests_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('lethe_erasure_requests', NEW.id::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER erasure_requests_notify
    AFTER INSERT ON erasure_requests
    FOR EACH ROW WHEN (NEW.state = 'requested')
    EXECUTE FUNCTION erasure_requests_notify();

-- The manifest, part 1: every row to erase, written in TargetsFound before
-- anything is deleted. batch_no is the discovery batch that found the row and
-- is also the masking batch that erases it.
CREATE TABLE erasure_manifest_rows (
    request_id  uuid        NOT NULL REFERENCES erasure_requests (id) ON DELETE CASCADE,
    batch_no    integer     NOT NULL,
    table_name  text        NOT NULL,
    row_id      text        NOT NULL,
    masked_at   timestamptz,
    PRIMARY KEY (request_id, table_name, row_id)
);
CREATE INDEX erasure_manifest_rows_batch ON erasure_manifest_rows (request_id, batch_no);

-- The manifest, part 2: every object to delete (or retain, and why). seq is
-- the deletion order: objects found inside another object (a PDF's images)
-- come before the object that lists them.
CREATE TABLE erasure_manifest_objects (
    request_id   uuid        NOT NULL REFERENCES erasure_requests (id) ON DELETE CASCADE,
    seq          bigint      NOT NULL,
    bucket       text        NOT NULL,
    object_key   text        NOT NULL,
    disposition  text        NOT NULL CHECK (disposition IN ('delete', 'protected')),
    source_table text        NOT NULL,
    deleted_at   timestamptz,
    PRIMARY KEY (request_id, bucket, object_key)
);
CREATE UNIQUE INDEX erasure_manifest_objects_seq ON erasure_manifest_objects (request_id, seq);

-- Things that could not be erased or resolved. Never silently skipped: a
-- request with anomalies ends as done-with-anomalies, never as clean.
CREATE TABLE erasure_anomalies (
    id          bigserial   PRIMARY KEY,
    request_id  uuid        NOT NULL REFERENCES erasure_requests (id) ON DELETE CASCADE,
    kind        text        NOT NULL,
    table_name  text,
    row_id      text,
    detail      text        NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX erasure_anomalies_request ON erasure_anomalies (request_id);

-- What happened, when, by which worker under which lease epoch. Batch starts
-- are written before the work and batch commits with it, so a repeated batch
-- is visible; claims and releases give each holder's interval.
CREATE TABLE erasure_events (
    id          bigserial   PRIMARY KEY,
    request_id  uuid        NOT NULL REFERENCES erasure_requests (id) ON DELETE CASCADE,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    worker      text,
    lease_epoch bigint,
    kind        text        NOT NULL,
    phase       text,
    batch_no    integer,
    detail      text
);
CREATE INDEX erasure_events_request ON erasure_events (request_id, id);
