-- THE live statuses of a membership, mirroring oasis_billing::MembershipStatus::LIVE (a test
-- in tests/api/billing.rs evaluates both on every status): a recurring membership in one of
-- these blocks a second one for the same user and tier. Every query that asks "is it live"
-- calls this function instead of copying the list.
CREATE FUNCTION billing_status_is_live(status TEXT) RETURNS BOOLEAN LANGUAGE sql IMMUTABLE AS $$
    SELECT status IN ('created', 'authenticated', 'active', 'pending', 'paused')
$$;

-- The one-live-recurring index states its predicate through the function (same rows).
DROP INDEX memberships_one_live_recurring_key;
CREATE UNIQUE INDEX memberships_one_live_recurring_key ON memberships (user_id, tier_id)
    WHERE kind = 'recurring' AND billing_status_is_live(status);
