-- Identity: accounts. Owned by the identity domain; other domains reference users(id).
CREATE TABLE users (
    id              BIGSERIAL PRIMARY KEY,
    username        TEXT        NOT NULL,
    email           TEXT        NOT NULL,
    first_name      TEXT        NOT NULL DEFAULT '',
    last_name       TEXT        NOT NULL DEFAULT '',
    -- bcrypt hash; NULL = no usable password (social logins).
    password_hash   TEXT,
    is_creator      BOOLEAN     NOT NULL DEFAULT false,
    profile_pic     TEXT,
    bio             TEXT        NOT NULL DEFAULT '',
    login_type      TEXT        NOT NULL DEFAULT 'manual'
                    CHECK (login_type IN ('manual', 'google', 'facebook', 'guest')),
    email_verified  BOOLEAN     NOT NULL DEFAULT false,
    is_active       BOOLEAN     NOT NULL DEFAULT true,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username));
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));
CREATE INDEX users_creators_idx ON users (id) WHERE is_creator;

-- DRF-style API keys (`Authorization: Token <40 hex>`). Only a SHA-256 of each key is stored:
-- a leaked database yields no usable tokens.
CREATE TABLE auth_tokens (
    id            BIGSERIAL PRIMARY KEY,
    user_id       BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key_hash      BYTEA       NOT NULL UNIQUE,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX auth_tokens_user_idx ON auth_tokens (user_id);
