-- Taking due jobs walks them in the order they are taken (`oasis_db::jobs::take_due`:
-- ORDER BY run_at, id LIMIT n over every registered kind). The index on (kind, run_at) could not
-- give that order across kinds, so each take read and sorted EVERY due job: with a backlog of
-- 20,000 webhooks one take cost 3.7 ms and draining the backlog grew with its square. In this
-- order a take reads the jobs it takes (and the due jobs of kinds this process does not run).
DROP INDEX jobs_due_idx;
CREATE INDEX jobs_take_idx ON jobs (run_at, id) WHERE done_at IS NULL AND dead_at IS NULL;
-- "Is such a job already queued?" (fee fetches, payout transfers: kind and payload, dead letters
-- included) read every job, done ones too, without it.
CREATE INDEX jobs_pending_kind_idx ON jobs (kind) WHERE done_at IS NULL;
