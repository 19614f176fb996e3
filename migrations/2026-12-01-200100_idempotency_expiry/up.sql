-- Stored Idempotency-Key replies expire (OASIS_IDEMPOTENCY_TTL) and a periodic sweep deletes
-- them by age.
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);
-- Guest checkout stored its replies, API key included in plaintext, under the shared owner 0;
-- replies are now stored per account and without credentials. Nothing secret stays behind.
DELETE FROM idempotency_keys WHERE user_id = 0;
