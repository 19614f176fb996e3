-- Sensitive account changes (email, payout bank account) of accounts without a usable password,
-- waiting for the owner to open the link mailed to the account's current address. Only a
-- SHA-256 of the link's token is stored; `payload` is opaque to identity (the new address, or
-- bank details sealed by billing). Single use; a newer request of the same kind replaces older.
CREATE TABLE pending_changes (
    id          BIGSERIAL PRIMARY KEY,
    user_id     BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind        TEXT        NOT NULL,
    payload     BYTEA       NOT NULL,
    token_hash  BYTEA       NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ
);
CREATE INDEX pending_changes_user_idx ON pending_changes (user_id);
