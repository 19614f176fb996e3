-- Dead letters: a job that failed OASIS_JOB_MAX_ATTEMPTS times is parked (dead_at set) until an
-- operator re-runs it (`oasis jobs retry <id>`); workers never take a dead job.
ALTER TABLE jobs ADD COLUMN dead_at TIMESTAMPTZ;
-- Jobs parked the old way (run_at pushed ten years out) become dead letters.
UPDATE jobs SET dead_at = now(), run_at = now()
WHERE done_at IS NULL AND run_at > now() + interval '5 years';
ALTER TABLE jobs ADD CONSTRAINT jobs_dead_not_done CHECK (dead_at IS NULL OR done_at IS NULL);
DROP INDEX jobs_due_idx;
CREATE INDEX jobs_due_idx ON jobs (kind, run_at) WHERE done_at IS NULL AND dead_at IS NULL;
CREATE INDEX jobs_dead_idx ON jobs (dead_at) WHERE dead_at IS NOT NULL;
