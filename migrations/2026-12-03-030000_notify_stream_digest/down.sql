DELETE FROM notifications WHERE kind = 'access_ending';
ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check
    CHECK (kind IN ('new_post', 'comment', 'like', 'follow', 'membership', 'cheer',
                    'payment_failed', 'membership_halted', 'payment_refunded', 'commission',
                    'receipt', 'membership_changed', 'creator_hiatus'));
DROP TABLE notification_digests;
DROP TABLE notification_stream_tickets;
