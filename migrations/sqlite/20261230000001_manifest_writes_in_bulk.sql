-- Kept in step with the PostgreSQL migration of the same version, which
-- leaves half of each manifest page free (so an entry's one update stays on
-- its page) and drops the manifest's per-row foreign-key checks. SQLite has
-- neither a fill factor nor a way to drop a constraint short of rebuilding
-- the table, and its manifest writes were never the bottleneck: nothing to
-- change here.
SELECT 1;
