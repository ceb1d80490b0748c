-- Who submitted a request over HTTP (the name of the API token, never the
-- token) and the submitter's own reference for it (a ticket, a withdrawal
-- id). The `submit` role reads only its own submissions; the destruction
-- record names the reference. Both NULL for the CLI and for bare INSERTs.
ALTER TABLE erasure_requests
    ADD COLUMN submitted_by text,
    ADD COLUMN external_ref text;
CREATE INDEX erasure_requests_submitted_by ON erasure_requests (submitted_by, requested_at DESC)
    WHERE submitted_by IS NOT NULL;
