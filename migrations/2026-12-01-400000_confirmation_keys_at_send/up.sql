-- A confirmation's key is minted when its email is sent (the job carries the row id, never the
-- key): until then the row has no key hash.
ALTER TABLE email_confirmations ALTER COLUMN key_hash DROP NOT NULL;

-- Finished jobs are deleted after OASIS_JOB_RETENTION_SECS by a periodic sweep.
CREATE INDEX jobs_done_idx ON jobs (done_at) WHERE done_at IS NOT NULL;

-- Emails queued by earlier versions carried their links (with keys and reset tokens) in the
-- payload: scrub the ones already sent.
UPDATE jobs SET payload = '{}'::jsonb WHERE kind = 'mail.send' AND done_at IS NOT NULL;
