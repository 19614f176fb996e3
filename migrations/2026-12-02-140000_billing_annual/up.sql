-- Annual billing: a tier may have a yearly price beside its monthly one; plans are per
-- (tier, period, price); a membership records the period it is charged per (its `amount` is
-- the price of one such period).
ALTER TABLE tiers
    ADD COLUMN annual_price BIGINT CHECK (annual_price IS NULL OR annual_price > 0);

ALTER TABLE billing_plans
    ADD COLUMN period TEXT NOT NULL DEFAULT 'monthly' CHECK (period IN ('monthly', 'yearly'));
ALTER TABLE billing_plans DROP CONSTRAINT billing_plans_pkey;
ALTER TABLE billing_plans ADD PRIMARY KEY (tier_id, period, amount, currency);

ALTER TABLE memberships
    ADD COLUMN period TEXT NOT NULL DEFAULT 'monthly' CHECK (period IN ('monthly', 'yearly'));
