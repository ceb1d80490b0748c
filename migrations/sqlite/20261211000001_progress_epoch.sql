-- Only attempts that made no progress count toward retry.max_attempts. This
-- is the lease epoch under which the request last committed a batch or
-- advanced a phase: a failure under that same epoch, or the takeover of that
-- lease after its worker died, followed progress and does not count.
ALTER TABLE erasure_requests ADD COLUMN progress_epoch INTEGER;
