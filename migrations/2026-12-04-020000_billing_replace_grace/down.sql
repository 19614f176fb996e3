ALTER TABLE billing_changes DROP COLUMN claimed_until, DROP COLUMN claimed_by;
DROP FUNCTION billing_has_access(TEXT, TEXT, TIMESTAMPTZ, TIMESTAMPTZ, BOOLEAN, TIMESTAMPTZ);
CREATE FUNCTION billing_has_access(
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
