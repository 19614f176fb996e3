-- Stored Idempotency-Key replies expire (OASIS_IDEMPOTENCY_TTL) and a periodic sweep deletes
-- them by age.
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);
