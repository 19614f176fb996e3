DROP INDEX jobs_pending_kind_idx;
DROP INDEX jobs_take_idx;
CREATE INDEX jobs_due_idx ON jobs (kind, run_at) WHERE done_at IS NULL AND dead_at IS NULL;
