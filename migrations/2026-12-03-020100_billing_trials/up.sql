-- Free trials (issue 14): a paid tier may give a fan's first membership of its creator a trial of
-- 0–31 days; the subscription's first charge is at the trial's end (Razorpay `start_at`).
ALTER TABLE tiers
    ADD COLUMN trial_days INTEGER NOT NULL DEFAULT 0 CHECK (trial_days BETWEEN 0 AND 31);
-- The end of a membership's trial (NULL: no trial). While the subscription is `authenticated`
-- (authorised, first charge at `trial_end`) the membership's `current_end` is the trial's end.
ALTER TABLE memberships ADD COLUMN trial_end TIMESTAMPTZ;

-- THE entitlement rule gains the trial (mirrors oasis_billing::entitlement::has_access): an
-- authenticated subscription gives access until `current_end`, which only a trial sets before
-- the first charge.
CREATE OR REPLACE FUNCTION billing_has_access(
    kind TEXT, status TEXT, current_end TIMESTAMPTZ, cancel_at_period_end BOOLEAN, at TIMESTAMPTZ
) RETURNS BOOLEAN LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE kind
        WHEN 'free' THEN status = 'active'
        WHEN 'one_time' THEN status = 'active' AND current_end IS NOT NULL AND at < current_end
        WHEN 'recurring' THEN CASE status
            WHEN 'active' THEN current_end IS NOT NULL AND at < current_end
            WHEN 'authenticated' THEN current_end IS NOT NULL AND at < current_end
            WHEN 'paused' THEN current_end IS NOT NULL AND at < current_end
            WHEN 'pending' THEN current_end IS NOT NULL AND at < current_end + interval '3 days'
            WHEN 'cancelled' THEN cancel_at_period_end AND current_end IS NOT NULL AND at < current_end
            ELSE false END
        ELSE false END
$$;
