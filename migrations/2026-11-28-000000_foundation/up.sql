-- Foundation: shared infrastructure tables.

-- Trigram matching for name search (social) lives in contrib, shipped with the server package.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Durable job queue / outbox: written in the same transaction as the change that needs it.
CREATE TABLE jobs (
    id          BIGSERIAL PRIMARY KEY,
    kind        TEXT        NOT NULL,
    payload     JSONB       NOT NULL DEFAULT '{}'::jsonb,
    run_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempts    INTEGER     NOT NULL DEFAULT 0,
    last_error  TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    done_at     TIMESTAMPTZ
);
CREATE INDEX jobs_due_idx ON jobs (kind, run_at) WHERE done_at IS NULL;

-- Stored responses of POSTs made with an Idempotency-Key header (per user and key).
CREATE TABLE idempotency_keys (
    user_id         BIGINT      NOT NULL,
    key             TEXT        NOT NULL,
    request_hash    TEXT        NOT NULL,
    response_status SMALLINT,
    response_body   BYTEA,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
