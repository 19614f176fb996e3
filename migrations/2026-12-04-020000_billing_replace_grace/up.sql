-- A change of tier by replacement (issue 14): the new subscription's first charge is due when the
-- old one's paid period ends; Razorpay may charge a little late, or the charge may fail and be
-- retried. Until that first charge is judged the replacement gives access to its tier: it is
-- `authenticated` with a period from the old period's end (`current_start`) for
-- OASIS_BILLING_REPLACE_GRACE_SECS (`current_end`). So THE entitlement rule (mirrors
-- oasis_billing::entitlement::has_access) gains the period's start: an authenticated subscription
-- gives access from `current_start` (when set) until `current_end`.
DROP FUNCTION billing_has_access(TEXT, TEXT, TIMESTAMPTZ, BOOLEAN, TIMESTAMPTZ);
CREATE FUNCTION billing_has_access(
    kind TEXT, status TEXT, current_start TIMESTAMPTZ, current_end TIMESTAMPTZ,
    cancel_at_period_end BOOLEAN, at TIMESTAMPTZ
) RETURNS BOOLEAN LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE kind
        WHEN 'free' THEN status = 'active'
        WHEN 'one_time' THEN status = 'active' AND current_end IS NOT NULL AND at < current_end
        WHEN 'recurring' THEN CASE status
            WHEN 'active' THEN current_end IS NOT NULL AND at < current_end
            WHEN 'authenticated' THEN current_end IS NOT NULL AND at < current_end
                                      AND (current_start IS NULL OR current_start <= at)
            WHEN 'paused' THEN current_end IS NOT NULL AND at < current_end
            WHEN 'pending' THEN current_end IS NOT NULL AND at < current_end + interval '3 days'
            WHEN 'cancelled' THEN cancel_at_period_end AND current_end IS NOT NULL AND at < current_end
            ELSE false END
        ELSE false END
$$;

-- A replacement is made in steps (reserve the new membership, create its subscription at
-- Razorpay, cancel the old one at its cycle end), each recorded before the next; the request and
-- the `billing.change` job that finishes a half-done one take turns by claiming the change for a
-- while (`claimed_by` until `claimed_until`), so the new subscription is never made twice.
ALTER TABLE billing_changes ADD COLUMN claimed_by TEXT, ADD COLUMN claimed_until TIMESTAMPTZ;
