ALTER TABLE memberships DROP COLUMN period;
DELETE FROM billing_plans WHERE period <> 'monthly';
ALTER TABLE billing_plans DROP CONSTRAINT billing_plans_pkey;
ALTER TABLE billing_plans DROP COLUMN period;
ALTER TABLE billing_plans ADD PRIMARY KEY (tier_id, amount, currency);
ALTER TABLE tiers DROP COLUMN annual_price;
