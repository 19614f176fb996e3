-- Notification settings per user and category (absent row = the category's default), receipts
-- as a notification kind, hidden notifications (category turned off in-app: kept for their
-- mail, never shown) and when a notification was mailed (the per-recipient rate cap).
CREATE TABLE notification_settings (
    user_id     BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    category    TEXT        NOT NULL CHECK (category IN ('receipts', 'membership_warnings',
                'creator_activity', 'commission_updates', 'new_posts', 'social', 'security')),
    in_app      BOOLEAN     NOT NULL,
    email       BOOLEAN     NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, category),
    -- Receipts and security mails cannot be turned off; social is never mailed.
    CONSTRAINT notification_settings_required_email
        CHECK (email OR category NOT IN ('receipts', 'security')),
    CONSTRAINT notification_settings_in_app_only CHECK (NOT email OR category <> 'social')
);

ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check
    CHECK (kind IN ('new_post', 'comment', 'like', 'follow', 'membership', 'cheer',
                    'payment_failed', 'membership_halted', 'payment_refunded', 'commission',
                    'receipt'));
ALTER TABLE notifications ADD COLUMN shown BOOLEAN NOT NULL DEFAULT true;
ALTER TABLE notifications ADD COLUMN emailed_at TIMESTAMPTZ;
CREATE INDEX notifications_emailed_idx ON notifications (recipient_id, emailed_at)
    WHERE emailed_at IS NOT NULL;
