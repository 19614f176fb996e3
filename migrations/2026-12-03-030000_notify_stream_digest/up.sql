-- Live stream tickets (for EventSource, which cannot send headers): only a SHA-256 of the
-- ticket is stored; redeeming deletes the row (single use).
CREATE TABLE notification_stream_tickets (
    ticket_hash BYTEA       PRIMARY KEY,
    user_id     BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at  TIMESTAMPTZ NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX notification_stream_tickets_user_idx ON notification_stream_tickets (user_id);
CREATE INDEX notification_stream_tickets_expires_idx ON notification_stream_tickets (expires_at);

-- One new-post digest per user and UTC day: the new_post notifications with
-- first_id <= id <= last_id. The primary key is what makes the digest job idempotent.
CREATE TABLE notification_digests (
    user_id    BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    day        DATE        NOT NULL,
    first_id   BIGINT      NOT NULL,
    last_id    BIGINT      NOT NULL,
    posts      INTEGER     NOT NULL CHECK (posts > 0),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, day)
);

-- "Your access ends in 3 days" (cancelled-at-cycle-end and one-time memberships).
ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check
    CHECK (kind IN ('new_post', 'comment', 'like', 'follow', 'membership', 'cheer',
                    'payment_failed', 'membership_halted', 'payment_refunded', 'commission',
                    'receipt', 'membership_changed', 'creator_hiatus', 'access_ending'));
