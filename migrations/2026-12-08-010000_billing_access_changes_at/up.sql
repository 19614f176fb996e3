-- When the clock alone next changes THE entitlement rule's answer for a membership (mirrors
-- oasis_billing::entitlement::access_changes_at): the first instant after `at` at which
-- billing_has_access(..., instant) differs from billing_has_access(..., at), or NULL when only a
-- write can change it. The read cache keeps a tier list's paying member counts until the
-- earliest of these among the tier's memberships.
CREATE FUNCTION billing_access_changes_at(
    kind TEXT, status TEXT, current_start TIMESTAMPTZ, current_end TIMESTAMPTZ,
    cancel_at_period_end BOOLEAN, at TIMESTAMPTZ
) RETURNS TIMESTAMPTZ LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE kind
        WHEN 'one_time' THEN CASE WHEN status = 'active' AND at < current_end THEN current_end END
        WHEN 'recurring' THEN CASE status
            WHEN 'active' THEN CASE WHEN at < current_end THEN current_end END
            WHEN 'paused' THEN CASE WHEN at < current_end THEN current_end END
            WHEN 'authenticated' THEN CASE
                WHEN current_start IS NOT NULL AND at < current_start
                    THEN CASE WHEN current_start < current_end THEN current_start END
                WHEN at < current_end THEN current_end END
            WHEN 'pending' THEN CASE WHEN at < current_end + interval '3 days'
                THEN current_end + interval '3 days' END
            WHEN 'cancelled' THEN CASE WHEN cancel_at_period_end AND at < current_end
                THEN current_end END
            END
        END
$$;
