DROP INDEX jobs_done_idx;

-- Pending confirmations without a key were never mailed: nothing can use them.
DELETE FROM email_confirmations WHERE key_hash IS NULL;
ALTER TABLE email_confirmations ALTER COLUMN key_hash SET NOT NULL;
