DROP TABLE idempotency_keys;
DROP TABLE jobs;
DROP EXTENSION IF EXISTS pg_trgm;
