-- Identity emails sent per account (verification, reset, email change), to cap how many one
-- account can receive in an hour: the public resend/reset endpoints must not become a way to
-- flood someone's inbox.
CREATE TABLE identity_mail_log (
    id          BIGSERIAL PRIMARY KEY,
    user_id     BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind        TEXT        NOT NULL,
    sent_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX identity_mail_log_user_idx ON identity_mail_log (user_id, sent_at);
