DROP INDEX memberships_one_live_recurring_key;
CREATE UNIQUE INDEX memberships_one_live_recurring_key ON memberships (user_id, tier_id)
    WHERE kind = 'recurring' AND status IN ('created', 'authenticated', 'active', 'pending', 'paused');

DROP FUNCTION billing_status_is_live(TEXT);
