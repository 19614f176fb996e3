DELETE FROM notifications WHERE kind = 'creator_hiatus';
ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check
    CHECK (kind IN ('new_post', 'comment', 'like', 'follow', 'membership', 'cheer',
                    'payment_failed', 'membership_halted', 'payment_refunded', 'commission',
                    'receipt', 'membership_changed'));
DROP TABLE billing_hiatus_members;
DROP TABLE billing_hiatuses;
