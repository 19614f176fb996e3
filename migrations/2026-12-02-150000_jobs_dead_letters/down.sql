DROP INDEX jobs_dead_idx;
DROP INDEX jobs_due_idx;
CREATE INDEX jobs_due_idx ON jobs (kind, run_at) WHERE done_at IS NULL;
UPDATE jobs SET run_at = now() + interval '10 years' WHERE dead_at IS NOT NULL;
ALTER TABLE jobs DROP CONSTRAINT jobs_dead_not_done;
ALTER TABLE jobs DROP COLUMN dead_at;
