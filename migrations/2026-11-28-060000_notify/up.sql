-- Notify: one row per notification and recipient (django-notifications-hq's model, with
-- typed references). Owned by the notify domain; filled by the `notify.fanout` job.

CREATE TABLE notifications (
    id                   BIGSERIAL   PRIMARY KEY,
    recipient_id         BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    actor_id             BIGINT      REFERENCES users (id) ON DELETE SET NULL,
    kind                 TEXT        NOT NULL CHECK (kind IN ('new_post', 'comment', 'like', 'follow',
                         'membership', 'cheer', 'payment_failed', 'membership_halted')),
    verb                 TEXT        NOT NULL,
    -- Generic references (type, id) with their display text at the time of the event.
    target_type          TEXT,
    target_id            BIGINT,
    target_repr          TEXT,
    action_object_type   TEXT,
    action_object_id     BIGINT,
    action_object_repr   TEXT,
    -- The post it is about: deleting the post deletes its notifications.
    post_id              BIGINT      REFERENCES posts (id) ON DELETE CASCADE,
    -- What made it (e.g. `post:42`): a re-run fan-out never notifies twice.
    event_key            TEXT        NOT NULL,
    data                 JSONB       NOT NULL DEFAULT '{}'::jsonb,
    unread               BOOLEAN     NOT NULL DEFAULT true,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT notifications_recipient_kind_event_key UNIQUE (recipient_id, kind, event_key)
);
-- A user's inbox, newest first (also serves the recipient_id foreign key).
CREATE INDEX notifications_recipient_created_idx
    ON notifications (recipient_id, created_at DESC, id DESC);
-- Unread lists and counts.
CREATE INDEX notifications_recipient_unread_idx
    ON notifications (recipient_id, unread, created_at DESC, id DESC);
CREATE INDEX notifications_actor_idx ON notifications (actor_id);
CREATE INDEX notifications_post_idx ON notifications (post_id);
