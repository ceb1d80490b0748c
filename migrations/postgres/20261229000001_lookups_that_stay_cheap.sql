-- Lookups a worker makes for every erasure, kept cheap however many requests
-- are done (before these, each was a scan of every request ever made):
-- minimisation looks a member's raw key up among the rows that still hold one
-- (the active requests and any not yet minimised), the backfill walks only
-- the done requests that kept a raw key, pruning only the done requests whose
-- manifest is still whole, and the claim reads the due requests in its own
-- order and stops at the first it can lock.
CREATE INDEX erasure_requests_raw_key ON erasure_requests (subject_key)
    WHERE subject_key IS NOT NULL;
CREATE INDEX erasure_requests_unminimised ON erasure_requests (finished_at)
    WHERE state = 'done' AND subject_key IS NOT NULL;
CREATE INDEX erasure_requests_unpruned ON erasure_requests (finished_at)
    WHERE state = 'done' AND manifest_pruned_at IS NULL;
DROP INDEX erasure_requests_claimable;
CREATE INDEX erasure_requests_claimable
    ON erasure_requests (next_attempt_at, requested_at)
    WHERE state IN ('requested', 'targets_found', 's3_cleared', 'db_masked');
