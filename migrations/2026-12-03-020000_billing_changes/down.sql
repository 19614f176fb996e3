DELETE FROM notifications WHERE kind = 'membership_changed';
ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check
    CHECK (kind IN ('new_post', 'comment', 'like', 'follow', 'membership', 'cheer',
                    'payment_failed', 'membership_halted', 'payment_refunded', 'commission',
                    'receipt'));
DROP TABLE billing_changes;
