DROP INDEX notifications_emailed_idx;
ALTER TABLE notifications DROP COLUMN emailed_at;
ALTER TABLE notifications DROP COLUMN shown;
DELETE FROM notifications WHERE kind = 'receipt';
ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check
    CHECK (kind IN ('new_post', 'comment', 'like', 'follow', 'membership', 'cheer',
                    'payment_failed', 'membership_halted', 'payment_refunded', 'commission'));
DROP TABLE notification_settings;
