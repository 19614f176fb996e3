-- Identity: email confirmations, JWT refresh tokens, failed-login throttle, social accounts.

-- One row per confirmation email; only a SHA-256 of the key is stored. `email` is the address
-- being confirmed (a pending email change until used).
CREATE TABLE email_confirmations (
    id          BIGSERIAL PRIMARY KEY,
    user_id     BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email       TEXT        NOT NULL,
    key_hash    BYTEA       NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ
);
CREATE INDEX email_confirmations_user_idx ON email_confirmations (user_id);

-- Issued refresh tokens by jti. Rotation marks a token used; presenting a used one revokes its
-- whole family (every rotation of one login).
CREATE TABLE refresh_tokens (
    jti         TEXT        PRIMARY KEY,
    user_id     BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family      TEXT        NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    used_at     TIMESTAMPTZ,
    revoked_at  TIMESTAMPTZ
);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family);

-- Failed logins, per scope (`user:<id>`, `login:<name>`, `addr:<ip>`), for throttling that
-- works across server processes.
CREATE TABLE login_failures (
    id          BIGSERIAL PRIMARY KEY,
    scope       TEXT        NOT NULL,
    failed_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_scope_idx ON login_failures (scope, failed_at);

-- Provider identities linked to accounts.
CREATE TABLE social_accounts (
    id          BIGSERIAL PRIMARY KEY,
    user_id     BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider    TEXT        NOT NULL CHECK (provider IN ('google', 'facebook')),
    subject     TEXT        NOT NULL,
    email       TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT social_accounts_provider_subject_key UNIQUE (provider, subject)
);
CREATE INDEX social_accounts_user_idx ON social_accounts (user_id);
